import type { Context } from "hono";
import type { RateDecision } from "../services/limits/rate_limiter.ts";
import type { RatePolicy } from "../services/limits/rate_policy.ts";
import type { AppEnv } from "./app_env.ts";
import { requestMeta } from "./auth.ts";
import { rateLimitHeaders } from "./problem.ts";
import { routePolicyOf } from "./route_policy.ts";

/**
 * Charges the request to its bucket by its route's rate class; null when the
 * route is not limited (or limits are off). Called by the `guard` layer.
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
