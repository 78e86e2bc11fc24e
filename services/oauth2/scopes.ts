import { type Permission, PERMISSIONS, permissionsOf, type Role } from "../auth/permissions.ts";

/** What each scope lets a client do, in words for the consent page. */
export const SCOPE_DESCRIPTIONS: Readonly<Record<Permission, string>> = {
  "profile:read": "See your profile (email address, display name)",
  "profile:write": "Change your profile",
  "notes:read": "Read your notes",
  "notes:write": "Create, change and delete your notes",
  "sessions:manage": "See and end your sessions",
  "apikeys:manage": "Manage your API keys",
  "uploads:read": "See and download your uploaded files",
  "uploads:write": "Upload and delete files",
  "notes:moderate": "Read and moderate every user's notes",
  "users:read": "See other users' accounts",
  "users:manage": "Manage user accounts (administrator)",
  "audit:read": "Read the audit log (administrator)",
  "oauth_clients:manage": "Manage OAuth2 clients (administrator)",
};

/** Parses a `scope` parameter (RFC 6749 §3.3): space-separated, no duplicates kept. */
export function parseScope(value: string | undefined): string[] | null {
  if (value === undefined) return null;
  return [...new Set(value.split(" ").filter((s) => s !== ""))];
}

/**
 * Granted scopes: the requested ones (or, when none are named, every scope of the client),
 * cut down to the client's allowed ones and, for a user, to the user's role; in a stable order.
 */
export function grantableScopes(
  requested: readonly string[] | null,
  clientScopes: readonly string[],
  role: Role | null,
): Permission[] {
  const wanted = new Set(requested ?? clientScopes);
  const allowed = new Set(clientScopes);
  const userPerms = role === null ? null : permissionsOf(role);
  return PERMISSIONS.filter((p) => wanted.has(p) && allowed.has(p) && (userPerms?.has(p) ?? true));
}
