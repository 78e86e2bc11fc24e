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

/** An OAuth2 client registered by an admin (never its secret, only the secret's hash). */
export function oauth2ClientKey(clientId: string): ["oauth2_clients", string] {
  return ["oauth2_clients", clientId];
}

/** Prefix of every OAuth2 client record. */
export function oauth2ClientsPrefix(): ["oauth2_clients"] {
  return ["oauth2_clients"];
}

/** A pending authorization request (between `/oauth2/authorize` and the consent answer). */
export function oauth2RequestKey(requestId: string): ["oauth2_requests", string] {
  return ["oauth2_requests", requestId];
}

/** An authorization code, by the SHA-256 of the code. */
export function oauth2CodeKey(codeHash: string): ["oauth2_codes", string] {
  return ["oauth2_codes", codeHash];
}

/** A redeemed code's grant id, kept so a replay can revoke what the code issued. */
export function oauth2SpentCodeKey(codeHash: string): ["oauth2_codes_spent", string] {
  return ["oauth2_codes_spent", codeHash];
}

/** A grant: what one authorization (or refresh chain) may do; its tokens die with it. */
export function oauth2GrantKey(grantId: string): ["oauth2_grants", string] {
  return ["oauth2_grants", grantId];
}

/** One-to-many index: user → grant ids. */
export function oauth2GrantByUserKey(
  userId: string,
  grantId: string,
): ["oauth2_grants_by_user", string, string] {
  return ["oauth2_grants_by_user", userId, grantId];
}

/** Prefix of every grant index entry of one user. */
export function oauth2GrantsByUserPrefix(userId: string): ["oauth2_grants_by_user", string] {
  return ["oauth2_grants_by_user", userId];
}

/** One-to-many index: client → grant ids. */
export function oauth2GrantByClientKey(
  clientId: string,
  grantId: string,
): ["oauth2_grants_by_client", string, string] {
  return ["oauth2_grants_by_client", clientId, grantId];
}

/** Prefix of every grant index entry of one client. */
export function oauth2GrantsByClientPrefix(clientId: string): ["oauth2_grants_by_client", string] {
  return ["oauth2_grants_by_client", clientId];
}

/** An OAuth2 refresh token, by the SHA-256 of the token. */
export function oauth2RefreshKey(tokenHash: string): ["oauth2_refresh_tokens", string] {
  return ["oauth2_refresh_tokens", tokenHash];
}

/** Blacklist entry of a revoked OAuth2 access-token `jti` (RFC 7009). */
export function oauth2RevokedJtiKey(jti: string): ["oauth2_revoked_jtis", string] {
  return ["oauth2_revoked_jtis", jti];
}

/** A remembered consent of one user to one client. */
export function oauth2ConsentKey(
  userId: string,
  clientId: string,
): ["oauth2_consents", string, string] {
  return ["oauth2_consents", userId, clientId];
}

/** Prefix of every consent of one user. */
export function oauth2ConsentsByUserPrefix(userId: string): ["oauth2_consents", string] {
  return ["oauth2_consents", userId];
}

/** Index: client → users who consented to it (value: the user id). */
export function oauth2ConsentByClientKey(
  clientId: string,
  userId: string,
): ["oauth2_consents_by_client", string, string] {
  return ["oauth2_consents_by_client", clientId, userId];
}

/** Prefix of every consent index entry of one client. */
export function oauth2ConsentsByClientPrefix(
  clientId: string,
): ["oauth2_consents_by_client", string] {
  return ["oauth2_consents_by_client", clientId];
}

/** A pending upstream-provider login, by the SHA-256 of its `state`. */
export function upstreamStateKey(stateHash: string): ["upstream_states", string] {
  return ["upstream_states", stateHash];
}

/** Link of an upstream account (provider, subject) to a Bulwark user id. */
export function upstreamLinkKey(
  provider: string,
  subject: string,
): ["upstream_links", string, string] {
  return ["upstream_links", provider, subject];
}

/** A pending email-verification token, by the SHA-256 of the token. */
export function emailVerificationKey(tokenHash: string): ["email_verifications", string] {
  return ["email_verifications", tokenHash];
}

/** The live verification token of a user (one at a time). */
export function emailVerificationByUserKey(
  userId: string,
): ["email_verifications_by_user", string] {
  return ["email_verifications_by_user", userId];
}

/** How many mails of one purpose an account was sent lately (mail flooding guard). */
export function mailBudgetKey(purpose: string, userId: string): ["mail_budgets", string, string] {
  return ["mail_budgets", purpose, userId];
}

/** Failed logins of one trusted device (device cookie) at one account. */
export function deviceFailuresKey(
  account: string,
  deviceId: string,
): ["login_failures_by_device", string, string] {
  return ["login_failures_by_device", account, deviceId];
}

/** Every trusted device's failure count at one account (cleared with the account's lock). */
export function deviceFailuresPrefix(account: string): ["login_failures_by_device", string] {
  return ["login_failures_by_device", account];
}

/** The open sampling window of one audit event type and key (aggregated repeats). */
export function auditSampleKey(type: string, key: string): ["audit_samples", string, string] {
  return ["audit_samples", type, key];
}

/** One entry of the revocation feed, ordered by time (ms), then a random id. */
export function revocationEntryKey(atMs: number, id: string): ["revocations", number, string] {
  return ["revocations", atMs, id];
}

/** Where listing the revocation feed from `atMs` starts. */
export function revocationFeedStart(atMs: number): ["revocations", number] {
  return ["revocations", atMs];
}

/** The feed head: rewritten with every append, so one small read tells whether anything changed. */
export function revocationHeadKey(): ["revocations_head"] {
  return ["revocations_head"];
}

/**
 * Search index: one entry per searchable term of a user (the normalised email
 * and the normalised display name), so `list({ start, end })` answers a prefix
 * search without reading every user.
 */
export function userSearchKey(term: string, userId: string): ["users_search", string, string] {
  return ["users_search", term, userId];
}

/** Prefix of the user search index. */
export function userSearchPrefix(): ["users_search"] {
  return ["users_search"];
}

/** Prefix of the unique email index (every user, in email order). */
export function usersByEmailPrefix(): ["users_by_email"] {
  return ["users_by_email"];
}

/** One-to-many index: role → user ids (role filters, the last-admin guard). */
export function userByRoleKey(role: string, userId: string): ["users_by_role", string, string] {
  return ["users_by_role", role, userId];
}

/** Prefix of every user id holding `role`. */
export function usersByRolePrefix(role: string): ["users_by_role", string] {
  return ["users_by_role", role];
}

/**
 * A note, stored under its owner in creation order (`sortKey` = creation time
 * plus a tiebreak), so listing and searching one user's notes is one range read.
 */
export function noteKey(
  ownerId: string,
  sortKey: string,
  noteId: string,
): ["notes", string, string, string] {
  return ["notes", ownerId, sortKey, noteId];
}

/** Prefix of every note of one owner. */
export function notesOfOwnerPrefix(ownerId: string): ["notes", string] {
  return ["notes", ownerId];
}

/** Index: note id → `{ owner_id, sort_key }`, the pointer to its record. */
export function noteByIdKey(noteId: string): ["notes_by_id", string] {
  return ["notes_by_id", noteId];
}

/** Index of every note in creation order (moderators' `?all=true`); the value is the note id. */
export function noteByTimeKey(sortKey: string, noteId: string): ["notes_by_time", string, string] {
  return ["notes_by_time", sortKey, noteId];
}

/** Prefix of the all-notes time index. */
export function notesByTimePrefix(): ["notes_by_time"] {
  return ["notes_by_time"];
}

/** Number of notes one user holds (the `MAX_NOTES_PER_USER` cap), a number. */
export function noteCountKey(ownerId: string): ["note_counts", string] {
  return ["note_counts", ownerId];
}

/** Prefix of every audit event id (time-ordered). */
export function auditPrefix(): ["audit"] {
  return ["audit"];
}

/** Prefix of every audit event of one user (as actor or as target). */
export function auditByUserPrefix(userId: string): ["audit_by_user", string] {
  return ["audit_by_user", userId];
}

/** Index: event type → audit event ids. */
export function auditByTypeKey(type: string, eventId: string): ["audit_by_type", string, string] {
  return ["audit_by_type", type, eventId];
}

/** Prefix of every audit event of one type. */
export function auditByTypePrefix(type: string): ["audit_by_type", string] {
  return ["audit_by_type", type];
}

/** A signed checkpoint of one audit hash chain, by chain id and sequence number. */
export function auditCheckpointKey(
  chainId: string,
  seq: number,
): ["audit_checkpoints", string, number] {
  return ["audit_checkpoints", chainId, seq];
}

/** Prefix of every audit checkpoint. */
export function auditCheckpointsPrefix(): ["audit_checkpoints"] {
  return ["audit_checkpoints"];
}

/** An active block (IP, CIDR or user) set by an admin, a rule or the command line. */
export function blockKey(blockId: string): ["blocks", string] {
  return ["blocks", blockId];
}

/** Prefix of every block. */
export function blocksPrefix(): ["blocks"] {
  return ["blocks"];
}

/** The lockdown (kill switch) state shared by every instance. */
export function lockdownKey(): ["ops_state", "lockdown"] {
  return ["ops_state", "lockdown"];
}

/** Events counted by one intrusion rule for one key in one fixed window (a KvU64). */
export function intrusionCounterKey(
  rule: string,
  key: string,
  window: number,
): ["intrusion_counters", string, string, number] {
  return ["intrusion_counters", rule, key, window];
}

/** Dedup marker of one alert kind and key (one alert per window, across instances). */
export function alertDedupKey(type: string, key: string): ["alert_dedup", string, string] {
  return ["alert_dedup", type, key];
}

/** Prefix of every session record (incident response: revoke them all). */
export function sessionsPrefix(): ["sessions"] {
  return ["sessions"];
}

/** Prefix of every API key record (incident response: revoke them all). */
export function apiKeysPrefix(): ["api_keys"] {
  return ["api_keys"];
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

/** An operator's or intrusion rule's login block of one account, apart from its failure count. */
export function loginBlockKey(account: string): ["login_blocks", string] {
  return ["login_blocks", account];
}

/** Changes with every key a user gains (create, rotate): checked so concurrent adds respect the cap. */
export function apiKeySetKey(userId: string): ["api_key_sets", string] {
  return ["api_key_sets", userId];
}

/**
 * Consumption of one rate bucket in one time slot, summed (`Deno.KvU64`) by every instance's
 * reconciler; the slot comes first so that expired slots are one contiguous range to delete.
 */
export function rateSharedKey(
  slotStartMs: number,
  name: string,
  key: string,
): ["rate_shared", number, string, string] {
  return ["rate_shared", slotStartMs, name, key];
}

/** Where listing shared rate slots that started before `slotStartMs` ends. */
export function rateSharedBefore(slotStartMs: number): ["rate_shared", number] {
  return ["rate_shared", slotStartMs];
}
