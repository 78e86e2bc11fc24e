/**
 * The registry of audit event types: `AuditInput.type` is this union, so a
 * misspelled event fails type checking and the admin API, metrics and alert
 * rules can name every type. Add a type here before recording it.
 */
export const AUDIT_EVENT_TYPES = [
  "user.registered",
  "auth.login",
  "auth.login_throttled",
  "auth.account_locked",
  "auth.refresh",
  "auth.refresh_reuse_detected",
  "auth.logout",
  "auth.logout_all",
  "credential_stuffing_suspected",
  "session.evicted",
  "session.revoked",
  "session.idle_timeout",
  "session.fingerprint_mismatch",
  "credentials.revoked_all",
  "email.verification_requested",
  "email.verified",
  "mail.suppressed",
  "password.reset_requested",
  "password.reset",
  "password.change",
  "authz.denied",
  "rate_limit.exceeded",
  "api_key.created",
  "api_key.rotated",
  "api_key.revoked",
  "api_key.refused",
  "upload.created",
  "upload.deleted",
  "upload.malware_detected",
  "mail.send_failed",
  "profile.updated",
  "note.moderated",
  "admin.user_created",
  "admin.user_updated",
  "admin.user_unlocked",
  "oauth2.client_created",
  "oauth2.client_deleted",
  "oauth2.client_auth_failed",
  "oauth2.consent_granted",
  "oauth2.consent_denied",
  "oauth2.consent_revoked",
  "oauth2.code_issued",
  "oauth2.code_redeemed",
  "oauth2.code_replayed",
  "oauth2.token_issued",
  "oauth2.token_refreshed",
  "oauth2.refresh_reuse_detected",
  "oauth2.token_revoked",
  "oauth2.grants_revoked",
  "upstream.login",
  "upstream.linked",
  "user.role_changed",
  "ops.command",
  "ops.block_added",
  "ops.block_removed",
  "ops.lockdown_on",
  "ops.lockdown_off",
  "ops.intrusion_detected",
  "ops.audit_verify_failed",
  "ops.tls_certificate_expiring",
] as const;

/** One audit event type. */
export type AuditEventType = typeof AUDIT_EVENT_TYPES[number];

/** True for a registered audit event type (admin queries validate `type` with it). */
export function isAuditEventType(value: string): value is AuditEventType {
  return (AUDIT_EVENT_TYPES as readonly string[]).includes(value);
}
