/** Roles, lowest first; each role holds every permission of the roles before it. */
export const ROLES = ["user", "moderator", "admin"] as const;

/** A role name. */
export type Role = typeof ROLES[number];

/** Permissions each role adds to those of the role below it (API.md). */
const ROLE_GRANTS = {
  user: [
    "profile:read",
    "profile:write",
    "notes:read",
    "notes:write",
    "sessions:manage",
    "apikeys:manage",
    "uploads:read",
    "uploads:write",
  ],
  moderator: ["notes:moderate", "users:read"],
  admin: ["users:manage", "audit:read", "oauth_clients:manage"],
} as const satisfies Record<Role, readonly string[]>;

/** A permission string such as `notes:write`. */
export type Permission = typeof ROLE_GRANTS[Role][number];

/** Every permission, in a stable order. */
export const PERMISSIONS: readonly Permission[] = ROLES.flatMap((r) => ROLE_GRANTS[r]);

const EFFECTIVE = new Map<Role, ReadonlySet<Permission>>(
  ROLES.map((role, i) => [role, new Set(ROLES.slice(0, i + 1).flatMap((r) => ROLE_GRANTS[r]))]),
);

/** The full permission set of `role`, including inherited permissions. */
export function permissionsOf(role: Role): ReadonlySet<Permission> {
  return EFFECTIVE.get(role) ?? new Set();
}

/** True when `role` is `minimum` or above it in the hierarchy. */
export function hasRole(role: Role, minimum: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(minimum);
}

/** True for a known role name. */
export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** True for a known permission string. */
export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

/**
 * The scopes a token gets: `null` (nothing asked for) means everything the role
 * has; a list is cut down to what the role has, and may end up empty — asking
 * only for scopes one cannot have never widens into all of them.
 */
export function grantScopes(role: Role, requested: readonly string[] | null): Permission[] {
  const allowed = permissionsOf(role);
  if (requested === null) return [...allowed];
  return PERMISSIONS.filter((p) => allowed.has(p) && requested.includes(p));
}

/**
 * True when a credential may act on other users' resources as an admin: the
 * role must be admin and this credential's scope must hold `users:manage`, so
 * an admin's narrowly scoped key or token stays within its owner's own things.
 */
export function hasAdminReach(caller: { role: Role; scopes: ReadonlySet<string> }): boolean {
  return hasRole(caller.role, "admin") && caller.scopes.has("users:manage");
}
