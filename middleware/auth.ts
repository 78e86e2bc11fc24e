import type { Context, MiddlewareHandler } from "hono";
import type { AuditService, RequestMeta } from "../services/core/audit.ts";
import type { ApiKeyService } from "../services/api_keys/api_keys.ts";
import type { AuthService, Principal, SessionPrincipal } from "../services/auth/auth.ts";
import type { OAuthPrincipal } from "../services/auth/principal.ts";
import { isEmailVerified } from "../services/identity/email_verification.ts";
import {
  EmailUnverifiedError,
  ForbiddenError,
  InsufficientScopeError,
  IpNotAllowedError,
  PasswordExpiredError,
  TokenExpiredError,
  TokenInvalidError,
  TokenRevokedError,
} from "../services/core/errors.ts";
import { hasRole, type Permission, type Role } from "../services/auth/permissions.ts";
import { type Action, authorize, authorizePermission } from "../services/auth/policy.ts";
import type { AppEnv } from "./app_env.ts";
import { routePolicyOf } from "./route_policy.ts";

/** What {@linkcode resolvePrincipal} needs. */
export interface AuthenticateOptions {
  auth: AuthService;
  apiKeys: ApiKeyService;
  /** Records authorization refusals (403) for security monitoring. */
  audit: AuditService;
  /** Judges OAuth2 access tokens (`typ: at+jwt`, RFC 9068) presented as Bearer tokens. */
  oauth2?: {
    isOAuthToken(token: string): boolean;
    authenticateAccessToken(token: string): Promise<OAuthPrincipal>;
  } | undefined;
}

/** True when the request presents a credential (`Authorization` or `X-API-Key`) to verify. */
export function hasCredential(c: Context<AppEnv>): boolean {
  return c.req.header("authorization") !== undefined || c.req.header("x-api-key") !== undefined;
}

/**
 * Before the route runs (the `guard` layer): sets `principal`
 * (null when anonymous) and `authError` (why a presented credential failed).
 */
export async function resolvePrincipal(
  c: Context<AppEnv>,
  options: AuthenticateOptions,
): Promise<void> {
  const { auth, apiKeys, oauth2 } = options;
  const header = c.req.header("authorization");
  c.set("principal", null);
  c.set("authError", null);
  const apiKey = c.req.header("x-api-key");
  if (header === undefined && apiKey === undefined) return;
  const match = header === undefined
    ? null
    : /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header.trim());
  try {
    if (header === undefined) {
      const identity = await apiKeys.authenticate(apiKey!, requestMeta(c));
      c.set("principal", {
        kind: "api_key",
        userId: identity.userId,
        keyId: identity.keyId,
        role: identity.role,
        scopes: identity.scopes,
        passwordExpired: auth.isPasswordExpired(identity.user),
        user: identity.user,
      });
    } else if (match === null) {
      throw new TokenInvalidError("Authorization must be a Bearer token");
    } else if (oauth2?.isOAuthToken(match[1]!)) {
      const principal = await oauth2.authenticateAccessToken(match[1]!);
      c.set("principal", {
        ...principal,
        passwordExpired: auth.isPasswordExpired(principal.user),
      });
    } else {
      // Password expiry is judged by authenticate() at this request, not at issuance.
      c.set("principal", await auth.authenticate(match[1]!));
    }
  } catch (error) {
    // Kept for requirePrincipal(); any other failure is a real fault and propagates.
    if (
      !(error instanceof TokenInvalidError || error instanceof TokenExpiredError ||
        error instanceof TokenRevokedError || error instanceof IpNotAllowedError)
    ) {
      throw error;
    }
    c.set("authError", error);
  }
}

/** After the route ran (the `guard` layer): audits an authorization refusal (403). */
export async function auditDenied(c: Context<AppEnv>, audit: AuditService): Promise<void> {
  // Hono turns a thrown error into the response at the level it was thrown and
  // leaves it on c.error, so refusals are read here rather than caught.
  const error = c.error;
  if (error instanceof ForbiddenError || error instanceof InsufficientScopeError) {
    await audit.record({
      type: "authz.denied",
      outcome: "failure",
      userId: c.get("principal")?.userId,
      meta: requestMeta(c),
      details: { code: error.code, method: c.req.method, path: c.req.path },
      // Repeated probing by one caller is one record a minute, with its count.
      sample: { key: c.get("principal")?.userId ?? c.get("clientIp") },
    });
  }
}

/**
 * An expired password may only be changed: every route that does not declare
 * `allowExpiredPassword` is refused with 403 `password_expired`, for Bearer
 * tokens and API keys alike (the `guard` layer throws it after the rate
 * limit, so these refusals are counted too). Null when the caller may go on.
 */
export function passwordExpiryRefusal(c: Context<AppEnv>): PasswordExpiredError | null {
  return c.get("principal")?.passwordExpired && !routePolicyOf(c).allowExpiredPassword
    ? new PasswordExpiredError("The password has expired; change it first")
    : null;
}

/** Returns the principal or refuses with 401 (the credential's own failure when there was one). */
export function requirePrincipal(c: Context<AppEnv>): Principal {
  const principal = c.get("principal");
  if (principal !== null) return principal;
  throw c.get("authError") ?? new TokenInvalidError("Authentication required");
}

/**
 * Returns the caller when it holds a login session (Bearer token), refusing
 * API keys and OAuth2 client tokens with 403: they cannot manage keys, sessions or passwords.
 */
export function requireSession(c: Context<AppEnv>): SessionPrincipal {
  const principal = requirePrincipal(c);
  if (principal.kind !== "user") {
    throw new ForbiddenError("This action needs a user session, not an API key or client token");
  }
  return principal;
}

/** Route guard: a caller with a login session (Bearer token). */
export function requireSessionAuth(): MiddlewareHandler<AppEnv> {
  return async function requireSessionAuth(c, next) {
    requireSession(c);
    await next();
  };
}

/** Route guard: any authenticated caller. */
export function requireAuth(): MiddlewareHandler<AppEnv> {
  return async function requireAuth(c, next) {
    requirePrincipal(c);
    await next();
  };
}

/**
 * Route guard: the caller's role must grant `permission` (else 403 `forbidden`)
 * and the credential's scopes must include it (else 403 `insufficient_scope`).
 */
export function requirePermission(permission: Permission): MiddlewareHandler<AppEnv> {
  return async function requirePermission(c, next) {
    authorizePermission(requirePrincipal(c), permission);
    await next();
  };
}

/**
 * Route guard for an action without a resource, decided by the policy module
 * (`services/auth/policy.ts`); owned resources are checked by their service.
 */
export function requireCan(action: Action): MiddlewareHandler<AppEnv> {
  return async function requireCan(c, next) {
    authorize(requirePrincipal(c), action);
    await next();
  };
}

/**
 * Route guard: with `required` (REQUIRE_EMAIL_VERIFICATION), the caller's
 * account must have a verified address (else 403 `email_unverified`): an
 * unproven address must not hold long-lived credentials or data (security
 * review #10, finding 1: account pre-hijacking).
 */
export function requireVerifiedEmail(required: boolean): MiddlewareHandler<AppEnv> {
  return async function requireVerifiedEmail(c, next) {
    const principal = requirePrincipal(c);
    if (required && !isEmailVerified(principal.user)) {
      throw new EmailUnverifiedError("Verify your email address first");
    }
    await next();
  };
}

/** Route guard: the caller's role must be `minimum` or above (the `@require_role` of the guidelines). */
export function requireRole(minimum: Role): MiddlewareHandler<AppEnv> {
  return async function requireRole(c, next) {
    const principal = requirePrincipal(c);
    if (!hasRole(principal.role, minimum)) {
      throw new ForbiddenError(`This action needs the "${minimum}" role`);
    }
    await next();
  };
}

/** The audit/session metadata of the current request. */
export function requestMeta(c: Context<AppEnv>): RequestMeta {
  return {
    ip: c.get("clientIp"),
    userAgent: c.req.header("user-agent") ?? "",
    requestId: c.get("requestId"),
  };
}
