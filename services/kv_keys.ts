/**
 * The one place that knows the Deno KV key schema. Keys are
 * `[collection, ...ids]`; indexes store the primary id, never a copy.
 */

/** Key of the readiness probe record. */
export function healthKey(): ["health", "probe"] {
  return ["health", "probe"];
}

/** A user record. */
export function userKey(userId: string): ["users", string] {
  return ["users", userId];
}

/** Unique index: normalised email → user id. */
export function userByEmailKey(email: string): ["users_by_email", string] {
  return ["users_by_email", email];
}

/** A session record (id = the tokens' `sid`). */
export function sessionKey(sessionId: string): ["sessions", string] {
  return ["sessions", sessionId];
}

/** One-to-many index: user → session ids. */
export function sessionByUserKey(
  userId: string,
  sessionId: string,
): ["sessions_by_user", string, string] {
  return ["sessions_by_user", userId, sessionId];
}

/** Prefix of every session index entry of one user. */
export function sessionsByUserPrefix(userId: string): ["sessions_by_user", string] {
  return ["sessions_by_user", userId];
}

/** Blacklist entry of a revoked access-token `jti`. */
export function revokedJtiKey(jti: string): ["revoked_jtis", string] {
  return ["revoked_jtis", jti];
}

/** An audit event; ids sort by time. */
export function auditKey(eventId: string): ["audit", string] {
  return ["audit", eventId];
}

/** Index: user → audit event ids. */
export function auditByUserKey(userId: string, eventId: string): ["audit_by_user", string, string] {
  return ["audit_by_user", userId, eventId];
}
