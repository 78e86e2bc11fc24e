import type { Context, MiddlewareHandler } from "hono";
import type { ApiKeyService } from "../services/api_keys/api_keys.ts";
import type { AuthService } from "../services/auth/auth.ts";
import type { AuditService } from "../services/core/audit.ts";
import type { RatePolicy } from "../services/limits/rate_policy.ts";
import type { AppEnv } from "./app_env.ts";
import {
  auditDenied,
  type AuthenticateOptions,
  hasCredential,
  passwordExpiryRefusal,
  resolvePrincipal,
} from "./auth.ts";
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
  /** Judges OAuth2 access tokens presented as Bearer tokens (see `auth.ts`). */
  oauth2?: AuthenticateOptions["oauth2"] | undefined;
  /** Refusals before anything else, probes included (a blocked address). @default none */
  beforeAuthenticate?: (c: Context<AppEnv>) => Promise<void>;
  /** Refusals between authentication and the rate limit (a blocked account, lockdown). */
  afterAuthenticate?: (c: Context<AppEnv>) => Promise<void>;
}

/**
 * The second and last cross-cutting layer: a blocked address is refused,
 * authenticate (the principal, or why a presented credential failed), a
 * blocked account or lockdown is refused, rate limit by the route's declared
 * class, the password-expiry refusal, and on the way out the authorization
 * audit and `X-RateLimit-*`. In that order: authenticated callers are keyed
 * by user id, a bad credential pays per IP, expiry refusals are counted too.
 *
 * A request without a credential on a route that declares no rate class (the
 * probes) has nothing to check, so it skips the whole layer's work.
 */
export function guard(options: GuardOptions): MiddlewareHandler<AppEnv> {
  const { rates, audit } = options;
  return async function guard(c, next) {
    // A blocked address is refused before any other work, probes included (API.md).
    await options.beforeAuthenticate?.(c);
    if (!hasCredential(c) && routePolicyOf(c).rate === "none") {
      c.set("principal", null);
      c.set("authError", null);
      return await next();
    }
    let decision = null;
    let refused = false;
    try {
      await resolvePrincipal(c, options);
      await options.afterAuthenticate?.(c);
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
