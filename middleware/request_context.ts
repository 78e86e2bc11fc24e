import type { Context } from "hono";
import { routePath } from "hono/route";
import { resolveClientIp } from "../services/limits/client_ip.ts";
import type { Logger } from "../services/core/logger.ts";
import type { AppEnv } from "./app_env.ts";

/** Options of {@linkcode createRequestContext}. */
export interface RequestContextOptions {
  logger: Logger;
  /** Trusted proxy hops for `X-Forwarded-For`. @default 0 */
  trustProxy?: number;
  /** Monotonic milliseconds for durations. @default performance.now */
  now?: () => number;
}

/** API.md: an incoming id is reused only when it is 1-128 chars of `[A-Za-z0-9._-]`. */
const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * The request id and client IP of every request, `X-Request-ID` on every
 * response (preflights and errors too) and one access-log line, as steps of
 * the `edge` layer. Logs the route pattern, never the query string or
 * headers, so tokens and secrets cannot reach the log.
 */
export interface RequestContext {
  /** Sets `requestId`, `clientIp` and `logger` on the context; returns the start time. */
  begin(c: Context<AppEnv>): number;
  /** Sets `X-Request-ID` on the response and writes the access-log line. */
  end(c: Context<AppEnv>, started: number): void;
}

/** Builds the request-context steps. */
export function createRequestContext(options: RequestContextOptions): RequestContext {
  const { logger } = options;
  const trustProxy = options.trustProxy ?? 0;
  if (!Number.isInteger(trustProxy) || trustProxy < 0) {
    throw new TypeError(
      "Cannot create the request context: trustProxy must be a non-negative integer",
    );
  }
  const now = options.now ?? (() => performance.now());
  // Ids only need to be unique, not secret: a random per-instance prefix and a
  // counter cost far less per request than a UUID.
  const prefix = crypto.randomUUID().slice(0, 8);
  let counter = 0;
  return {
    begin(c) {
      const started = now();
      const incoming = c.req.header("x-request-id");
      const requestId = incoming !== undefined && REQUEST_ID.test(incoming)
        ? incoming
        : `${prefix}-${(++counter).toString(36).padStart(6, "0")}`;
      const addr = c.env?.remoteAddr;
      const peer = addr !== undefined && "hostname" in addr ? addr.hostname : undefined;
      c.set("requestId", requestId);
      c.set("clientIp", resolveClientIp(peer, c.req.header("x-forwarded-for"), trustProxy));
      c.set("logger", logger);
      return started;
    },
    end(c, started) {
      const requestId = c.get("requestId");
      c.res.headers.set("X-Request-ID", requestId);
      logger.info("request", {
        request_id: requestId,
        method: c.req.method,
        route: routePath(c),
        path: c.req.path,
        status: c.res.status,
        duration_ms: Math.round((now() - started) * 100) / 100,
        ip: c.get("clientIp"),
      });
    },
  };
}
