import type { MiddlewareHandler } from "hono";
import type { ApiKeyService } from "../services/api_keys/api_keys.ts";
import type { AuthService } from "../services/auth/auth.ts";
import type { AuditService } from "../services/core/audit.ts";
import type { RatePolicy } from "../services/limits/rate_policy.ts";
import type { AppEnv } from "./app_env.ts";
import { auditDenied, hasCredential, passwordExpiryRefusal, resolvePrincipal } from "./auth.ts";
import { onError } from "./problem.ts";
import { chargeRequest, writeRateLimitHeaders } from "./rate_limit.ts";
import { routePolicyOf } from "./route_policy.ts";

/** Options of {@linkcode guard}. */
export interface GuardOptions {
  auth: AuthService;
  apiKeys: ApiKeyService;
  /** Records authorization refusals (403) for security monitoring. */
  audit: AuditService;
  rates: RatePolicy;
}

/**
 * The second and last cross-cutting layer: authenticate (the principal, or
 * why a presented credential failed), rate limit by the route's declared
 * class, the password-expiry refusal, and on the way out the authorization
 * audit and `X-RateLimit-*`. In that order, as `authenticate`, `rateLimit` and
 * `enforcePasswordExpiry` did as three layers: authenticated callers are keyed
 * by user id, a bad credential pays per IP, expiry refusals are counted too.
 *
 * A request without a credential on a route that declares no rate class (the
 * probes) has nothing to check, so it skips the whole layer's work.
 */
export function guard(options: GuardOptions): MiddlewareHandler<AppEnv> {
  const { rates, audit } = options;
  return async function guard(c, next) {
    if (!hasCredential(c) && routePolicyOf(c).rate === "none") {
      c.set("principal", null);
      c.set("authError", null);
      return await next();
    }
    await resolvePrincipal(c, options);
    let decision = null;
    let refused = false;
    try {
      decision = await chargeRequest(c, rates);
      const expired = passwordExpiryRefusal(c);
      if (expired !== null) throw expired;
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      // Answered here, as the separate layers did, so the headers and the audit below still apply.
      c.error = error;
      c.res = onError(error, c);
      refused = true;
    }
    if (!refused) await next();
    if (decision !== null) writeRateLimitHeaders(c, decision);
    await auditDenied(c, audit);
  };
}
