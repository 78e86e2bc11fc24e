import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "./body_limit.ts";
import type { AppEnv } from "./app_env.ts";
import { createCors } from "./cors.ts";
import { onError } from "./problem.ts";
import { createRequestContext } from "./request_context.ts";
import { securityHeaderWriter } from "./security_headers.ts";
import type { Logger } from "../services/core/logger.ts";

/** Options of {@linkcode edge}. */
export interface EdgeOptions {
  logger: Logger;
  /** Trusted proxy hops for `X-Forwarded-For`. @default 0 */
  trustProxy?: number;
  /** CORS origins (see `cors.ts`). */
  corsOrigins: readonly string[];
  /** `X-XSS-Protection` value; empty omits it. @default "1; mode=block" */
  xssProtection?: string;
  /** JSON body limit in bytes. */
  bodyLimitBytes: number;
  /**
   * Told about every finished response with its duration in seconds (request
   * metrics), in this same pass rather than a layer of its own. @default none
   */
  observe?: ((c: Context<AppEnv>, seconds: number) => void) | undefined;
}

/**
 * The outermost layer, doing in one pass what every response needs (DESIGN.md
 * order: request id → CORS → security headers → body limit): request id and
 * client IP, the CORS decision (a preflight is answered here), the body limit
 * (only for requests that have a body), then on the way out the CORS and
 * security headers, `X-Request-ID` and one access-log line. Each async layer
 * costs about a tenth of `/health`'s throughput, so these are one layer, not
 * five; the pieces stay in their own modules, each usable and tested alone.
 * Errors thrown by this layer itself (a body over the limit) are answered
 * here, so they still get every header.
 */
export function edge(options: EdgeOptions): MiddlewareHandler<AppEnv> {
  const context = createRequestContext({
    logger: options.logger,
    ...(options.trustProxy === undefined ? {} : { trustProxy: options.trustProxy }),
  });
  const cors = createCors({ origins: options.corsOrigins });
  const writeSecurityHeaders = securityHeaderWriter(
    options.xssProtection === undefined ? {} : { xssProtection: options.xssProtection },
  );
  const limit = bodyLimit({ maxBytes: options.bodyLimitBytes });
  return async function edge(c, next) {
    const started = context.begin(c);
    const origin = cors.allowedOrigin(c);
    if (cors.isPreflight(c)) {
      c.res = cors.preflight(origin);
    } else {
      try {
        // Only requests with a body the limit applies to are counted (see body_limit.ts).
        await limit(c, next);
      } catch (error) {
        // Only this layer's own throws land here: Hono answers the route's at their level.
        if (!(error instanceof Error)) throw error;
        c.error = error;
        c.res = onError(error, c);
      }
      cors.decorate(c.res.headers, origin);
    }
    writeSecurityHeaders(c);
    context.end(c, started);
    options.observe?.(c, (performance.now() - started) / 1000);
  };
}
