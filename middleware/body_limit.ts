import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit as honoBodyLimit } from "hono/body-limit";
import { PayloadTooLargeError } from "../services/core/errors.ts";
import type { AppEnv } from "./app_env.ts";
import { routePolicyOf } from "./route_policy.ts";

/** Options of {@linkcode bodyLimit}. */
export interface BodyLimitOptions {
  /** Largest accepted body in bytes. */
  maxBytes: number;
}

/**
 * Refuses bodies over `maxBytes` with 413: at once from `Content-Length`, or
 * as soon as a chunked body passes the limit, without reading the rest.
 * Routes that declare `body: "stream"` (uploads) count and cap their own.
 */
export function bodyLimit(options: BodyLimitOptions): MiddlewareHandler<AppEnv> {
  if (!Number.isInteger(options.maxBytes) || options.maxBytes <= 0) {
    throw new TypeError("Cannot create bodyLimit: maxBytes must be a positive integer");
  }
  const limit = honoBodyLimit({
    maxSize: options.maxBytes,
    onError: () => {
      throw new PayloadTooLargeError(`Request body exceeds ${options.maxBytes} bytes`);
    },
  });
  return async function bodyLimit(c, next) {
    if (!hasLimitedBody(c)) return await next();
    await limit(c, next);
  };
}

/**
 * True when the request has a body this limit applies to: GET, HEAD and
 * OPTIONS requests without one skip the counting wrapper altogether, and
 * routes that declare `body: "stream"` (uploads) count and cap their own.
 */
function hasLimitedBody(c: Context<AppEnv>): boolean {
  return c.req.raw.body !== null && routePolicyOf(c).body !== "stream";
}
