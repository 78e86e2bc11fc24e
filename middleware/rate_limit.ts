import type { Context, MiddlewareHandler } from "hono";
import type { RateDecision } from "../services/limits/rate_limiter.ts";
import type { RatePolicy } from "../services/limits/rate_policy.ts";
import type { AppEnv } from "./app_env.ts";
import { requestMeta } from "./auth.ts";
import { rateLimitHeaders } from "./problem.ts";
import { routePolicyOf } from "./route_policy.ts";

/** Options of {@linkcode rateLimit}. */
export interface RateLimitOptions {
  policy: RatePolicy;
}

/**
 * Charges every request to its KV token bucket (API.md "Rate limits") by the
 * rate class its route declares, and writes `X-RateLimit-*`; a refusal is 429
 * `rate_limited` with `Retry-After`. Runs after `authenticate` so an
 * authenticated caller is keyed by user id; a request whose credential failed
 * counts as anonymous, by client IP.
 */
export function rateLimit(options: RateLimitOptions): MiddlewareHandler<AppEnv> {
  const { policy } = options;
  return async function rateLimit(c, next) {
    const decision = await chargeRequest(c, policy);
    await next();
    if (decision !== null) writeRateLimitHeaders(c, decision);
  };
}

/**
 * Charges the request to its bucket by its route's rate class; null when the
 * route is not limited (or limits are off). The work of {@linkcode rateLimit} before the route.
 *
 * @throws {RateLimitedError} when the bucket is empty
 */
export async function chargeRequest(
  c: Context<AppEnv>,
  policy: RatePolicy,
): Promise<RateDecision | null> {
  const tier = routePolicyOf(c).rate;
  if (!policy.enabled || tier === "none") return null;
  const principal = c.get("principal");
  return await policy.checkRequest(
    tier,
    principal === null
      ? { kind: "anonymous" }
      : principal.kind === "api_key"
      ? { kind: "api_key", id: principal.keyId, userId: principal.userId }
      : { kind: "user", id: principal.userId, userId: principal.userId },
    requestMeta(c),
  );
}

/** Writes a charged bucket's `X-RateLimit-*` headers onto the response. */
export function writeRateLimitHeaders(c: Context<AppEnv>, decision: RateDecision): void {
  for (const [name, value] of Object.entries(rateLimitHeaders(decision))) {
    c.res.headers.set(name, value);
  }
}
