import type { MiddlewareHandler } from "hono";
import {
  rateLimitHeaders,
  type RatePolicy,
  type RateTier,
} from "../services/limits/rate_policy.ts";
import type { AppEnv } from "./app_env.ts";
import { requestMeta } from "./auth.ts";

/** Options of {@linkcode rateLimit}. */
export interface RateLimitOptions {
  policy: RatePolicy;
}

/** The routes of API.md's 5/minute row: credential guessing and account enumeration surfaces. */
const LOGIN_ROUTES = new Set([
  "POST /auth/login",
  "POST /auth/register",
  "POST /auth/password/forgot",
  "POST /auth/password/reset",
  "POST /oauth2/token",
]);

/** Liveness and readiness probes are never limited: an orchestrator must always reach them. */
const EXEMPT = new Set(["/health", "/ready"]);

/**
 * Charges every request to its KV token bucket (API.md "Rate limits") and
 * writes `X-RateLimit-*`; a refusal is 429 `rate_limited` with `Retry-After`.
 * Runs after `authenticate` so an authenticated caller is keyed by user id; a
 * request whose credential failed counts as anonymous, by client IP.
 */
export function rateLimit(options: RateLimitOptions): MiddlewareHandler<AppEnv> {
  const { policy } = options;
  return async function rateLimit(c, next) {
    if (!policy.enabled || EXEMPT.has(c.req.path)) return await next();
    const route = `${c.req.method} ${c.req.path}`;
    const tier: RateTier = LOGIN_ROUTES.has(route)
      ? "login"
      : route === "POST /uploads"
      ? "uploads"
      : "general";
    const principal = c.get("principal");
    const decision = await policy.checkRequest(
      tier,
      principal === null
        ? { kind: "anonymous" }
        : principal.kind === "api_key"
        ? { kind: "api_key", id: principal.keyId, userId: principal.userId }
        : { kind: "user", id: principal.userId, userId: principal.userId },
      requestMeta(c),
    );
    await next();
    if (decision !== null) {
      for (const [name, value] of Object.entries(rateLimitHeaders(decision))) {
        c.res.headers.set(name, value);
      }
    }
  };
}
