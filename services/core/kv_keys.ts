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

/** Consecutive failed logins of one account identifier (existing or not). */
export function loginFailuresKey(account: string): ["login_failures", string] {
  return ["login_failures", account];
}

/** Failed-login accounts seen from one client IP (credential-stuffing detection). */
export function loginFailuresByIpKey(ip: string): ["login_failures_by_ip", string] {
  return ["login_failures_by_ip", ip];
}

/** A password-reset token, by the SHA-256 of its secret. */
export function passwordResetKey(tokenHash: string): ["password_resets", string] {
  return ["password_resets", tokenHash];
}

/** The one live reset token of a user (a newer request replaces it). */
export function passwordResetByUserKey(userId: string): ["password_resets_by_user", string] {
  return ["password_resets_by_user", userId];
}

/** An API key record (never the key itself). */
export function apiKeyKey(keyId: string): ["api_keys", string] {
  return ["api_keys", keyId];
}

/** Unique index: hash of the key → `{ id, user_id }`, for O(1) lookup. */
export function apiKeyByHashKey(hash: string): ["api_keys_by_hash", string] {
  return ["api_keys_by_hash", hash];
}

/** One-to-many index: user → API key ids. */
export function apiKeyByUserKey(
  userId: string,
  keyId: string,
): ["api_keys_by_user", string, string] {
  return ["api_keys_by_user", userId, keyId];
}

/** Prefix of every API key index entry of one user. */
export function apiKeysByUserPrefix(userId: string): ["api_keys_by_user", string] {
  return ["api_keys_by_user", userId];
}

/** Use counter of an API key (a KvU64 updated with `sum`). */
export function apiKeyUsageKey(keyId: string): ["api_key_usage", string] {
  return ["api_key_usage", keyId];
}

/** Last use (time and IP) of an API key. */
export function apiKeyLastUseKey(keyId: string): ["api_key_last_use", string] {
  return ["api_key_last_use", keyId];
}

/** Metadata of one uploaded file. */
export function uploadKey(uploadId: string): ["uploads", string] {
  return ["uploads", uploadId];
}

/** One-to-many index: owner → upload ids. */
export function uploadByUserKey(
  userId: string,
  uploadId: string,
): ["uploads_by_user", string, string] {
  return ["uploads_by_user", userId, uploadId];
}

/** Prefix of every upload index entry of one owner. */
export function uploadsByUserPrefix(userId: string): ["uploads_by_user", string] {
  return ["uploads_by_user", userId];
}

/** Bytes stored by one owner (quota accounting), a number. */
export function uploadUsageKey(userId: string): ["upload_usage", string] {
  return ["upload_usage", userId];
}

/** Marker of a committed KV blob: reads require it (`UPLOAD_STORE=kv`). */
export function uploadBlobKey(blobId: string): ["upload_blobs", string] {
  return ["upload_blobs", blobId];
}

/** One chunk (≤ 64 KiB) of a KV blob. */
export function uploadBlobChunkKey(
  blobId: string,
  index: number,
): ["upload_blob_chunks", string, number] {
  return ["upload_blob_chunks", blobId, index];
}

/** Prefix of every chunk of one KV blob. */
export function uploadBlobChunksPrefix(blobId: string): ["upload_blob_chunks", string] {
  return ["upload_blob_chunks", blobId];
}

/** A KV blob being written and not yet committed; ids sort by time so stale ones can be swept. */
export function uploadBlobPendingKey(blobId: string): ["upload_blobs_pending", string] {
  return ["upload_blobs_pending", blobId];
}

/** Prefix of every pending KV blob marker. */
export function uploadBlobsPendingPrefix(): ["upload_blobs_pending"] {
  return ["upload_blobs_pending"];
}

/** ACME account of one directory URL: its key (PEM) and account URL. */
export function acmeAccountKey(directoryUrl: string): ["tls_acme_accounts", string] {
  return ["tls_acme_accounts", directoryUrl];
}

/** The certificate and key last issued for one sorted, comma-joined domain list. */
export function acmeCertificateKey(domains: string): ["tls_acme_certificates", string] {
  return ["tls_acme_certificates", domains];
}

/** Short lease so only one instance sharing the store orders a certificate at a time. */
export function acmeOrderLeaseKey(domains: string): ["tls_acme_order_lease", string] {
  return ["tls_acme_order_lease", domains];
}
