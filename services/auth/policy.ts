/**
 * The one authorization policy: RBAC (the role must grant a permission), the
 * credential's scope (a token or key may hold less than its role), and
 * ownership (another user's resource needs the moderating permission). Route
 * guards and services both ask {@linkcode can} / {@linkcode authorize}; no
 * other module decides who may do what.
 *
 * @module
 */
import { ForbiddenError, InsufficientScopeError } from "../core/errors.ts";
import { type Permission, permissionsOf, type Role } from "./permissions.ts";

/** Who is acting: a principal (token or API key) reduced to what the policy reads. */
export interface Actor {
  readonly userId: string;
  readonly role: Role;
  /** What this credential may do; never more than the role (checked again here). */
  readonly scopes: ReadonlySet<string>;
}

/** A resource with an owner (a note, a profile). */
export interface OwnedResource {
  readonly ownerId: string;
}

interface Rule {
  /** Needed on one's own resource, or on any resource when the action has none. */
  readonly own: Permission;
  /** Needed instead on someone else's resource; absent = nobody may. */
  readonly others?: Permission;
}

/** Every action and what it needs (API.md's permission table). */
const RULES = {
  "profile:read": { own: "profile:read" },
  "profile:update": { own: "profile:write" },
  "notes:create": { own: "notes:write" },
  "notes:list": { own: "notes:read" },
  "notes:list_all": { own: "notes:moderate" },
  "notes:read": { own: "notes:read", others: "notes:moderate" },
  "notes:update": { own: "notes:write", others: "notes:moderate" },
  "notes:delete": { own: "notes:write", others: "notes:moderate" },
  "users:read": { own: "users:read" },
  "users:manage": { own: "users:manage" },
  "audit:read": { own: "audit:read" },
} as const satisfies Record<string, Rule>;

/** An action the policy knows. */
export type Action = keyof typeof RULES;

/** The outcome of a policy check. */
export type Decision =
  | { readonly allowed: true }
  | {
    readonly allowed: false;
    /** `forbidden`: the role may not; `insufficient_scope`: the role may, this credential not. */
    readonly reason: "forbidden" | "insufficient_scope";
    readonly permission: Permission;
  };

/** Decides whether `actor` may do `action` (on `resource`, for owned resources). */
export function decide(actor: Actor, action: Action, resource?: OwnedResource): Decision {
  const rule: Rule = RULES[action];
  const own = resource === undefined || resource.ownerId === actor.userId;
  const permission = own ? rule.own : rule.others;
  if (permission === undefined) {
    return { allowed: false, reason: "forbidden", permission: rule.own };
  }
  return decidePermission(actor, permission);
}

/** The RBAC + scope check of one permission: the role must grant it, then the credential hold it. */
export function decidePermission(actor: Actor, permission: Permission): Decision {
  if (!permissionsOf(actor.role).has(permission)) {
    return { allowed: false, reason: "forbidden", permission };
  }
  if (!actor.scopes.has(permission)) {
    return { allowed: false, reason: "insufficient_scope", permission };
  }
  return { allowed: true };
}

/** True when `actor` may do `action` (on `resource`). */
export function can(actor: Actor, action: Action, resource?: OwnedResource): boolean {
  return decide(actor, action, resource).allowed;
}

/**
 * Refuses unless `actor` may do `action` (on `resource`). The refusal is audited
 * as `authz.denied` by the authenticate middleware, wherever it was thrown.
 *
 * @throws {ForbiddenError} when the role does not allow it (or the resource is someone else's)
 * @throws {InsufficientScopeError} when the role allows it but the credential's scope does not
 */
export function authorize(actor: Actor, action: Action, resource?: OwnedResource): void {
  enforce(decide(actor, action, resource), actor, resource);
}

/**
 * Refuses unless `actor`'s role grants `permission` and its credential holds it (route guards).
 *
 * @throws {ForbiddenError} | {InsufficientScopeError} as {@linkcode authorize}
 */
export function authorizePermission(actor: Actor, permission: Permission): void {
  enforce(decidePermission(actor, permission), actor);
}

function enforce(decision: Decision, actor: Actor, resource?: OwnedResource): void {
  if (decision.allowed) return;
  if (decision.reason === "insufficient_scope") {
    throw new InsufficientScopeError(`This credential lacks the "${decision.permission}" scope`);
  }
  throw new ForbiddenError(
    resource !== undefined && resource.ownerId !== actor.userId
      ? "This resource belongs to another user"
      : `This action needs the "${decision.permission}" permission`,
  );
}
