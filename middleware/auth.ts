import type { Context, MiddlewareHandler } from "hono";
import type { AuditService, RequestMeta } from "../services/audit.ts";
import type { AuthService, Principal } from "../services/auth.ts";
import { ForbiddenError, InsufficientScopeError, TokenInvalidError } from "../services/errors.ts";
import { hasRole, type Permission, permissionsOf, type Role } from "../services/permissions.ts";
import type { AppEnv } from "./app_env.ts";

/** Options of {@linkcode authenticate}. */
export interface AuthenticateOptions {
  auth: AuthService;
  /** Records authorization refusals (403) for security monitoring. */
  audit: AuditService;
}

/**
 * OAuth2PasswordBearer: reads `Authorization: Bearer <jwt>` when present and
 * puts the verified principal on the context. A present but bad credential is
 * refused at once (401); no credential leaves the principal null.
 */
export function authenticate(options: AuthenticateOptions): MiddlewareHandler<AppEnv> {
  const { auth, audit } = options;
  return async function authenticate(c, next) {
    const header = c.req.header("authorization");
    c.set("principal", null);
    if (header !== undefined) {
      const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header.trim());
      if (match === null) throw new TokenInvalidError("Authorization must be a Bearer token");
      c.set("principal", await auth.authenticate(match[1]!));
    }
    try {
      await next();
    } catch (error) {
      if (error instanceof ForbiddenError || error instanceof InsufficientScopeError) {
        await audit.record({
          type: "authz.denied",
          outcome: "failure",
          userId: c.get("principal")?.userId,
          meta: requestMeta(c),
          details: { code: error.code, method: c.req.method, path: c.req.path },
        });
      }
      throw error;
    }
  };
}

/** Returns the principal or refuses with 401. */
export function requirePrincipal(c: Context<AppEnv>): Principal {
  const principal = c.get("principal");
  if (principal === null) throw new TokenInvalidError("Authentication required");
  return principal;
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
    const principal = requirePrincipal(c);
    if (!permissionsOf(principal.role).has(permission)) {
      throw new ForbiddenError(`This action needs the "${permission}" permission`);
    }
    if (!principal.scopes.has(permission)) {
      throw new InsufficientScopeError(`This credential lacks the "${permission}" scope`);
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
