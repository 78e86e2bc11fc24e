/**
 * Every stable machine-readable error code (API.md). `AppError.code` is this
 * union, so a misspelled code fails type checking instead of becoming a 500;
 * `middleware/problem.ts` maps each one to its HTTP status and title.
 */
export const PROBLEM_CODES = [
  "validation_failed",
  "malformed_json",
  "bad_request",
  "payload_too_large",
  "quota_exceeded",
  "unsupported_media_type",
  "invalid_credentials",
  "token_invalid",
  "token_expired",
  "token_revoked",
  "account_locked",
  "login_throttled",
  "rate_limited",
  "forbidden",
  "insufficient_scope",
  "ip_not_allowed",
  "ip_blocked",
  "email_unverified",
  "not_found",
  "method_not_allowed",
  "conflict",
  "limit_reached",
  "password_policy",
  "password_reused",
  "password_expired",
  "csrf_failed",
  "reset_token_invalid",
  "verification_token_invalid",
  "malware_detected",
  "archive_rejected",
  "scanner_unavailable",
  "service_unavailable",
  "maintenance",
  "internal",
] as const;

/** A stable machine-readable error code. */
export type ProblemCode = typeof PROBLEM_CODES[number];

/** A field-level problem reported inside a problem+json `errors` member. */
export interface FieldError {
  readonly path: string;
  readonly message: string;
}

/** Options shared by every {@linkcode AppError}. */
export interface AppErrorOptions {
  /** The error that led to this one. */
  cause?: unknown;
  /** Field-level problems (validation and password policy). */
  errors?: readonly FieldError[];
  /** Seconds the client should wait before retrying. */
  retryAfter?: number;
}

/**
 * Base class of every error a service throws on purpose. Each subclass carries
 * a stable `code` from API.md; `middleware/problem.ts` maps codes to HTTP.
 */
export abstract class AppError extends Error {
  abstract readonly code: ProblemCode;
  readonly errors: readonly FieldError[] | undefined;
  readonly retryAfter: number | undefined;

  constructor(message: string, options: AppErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.errors = options.errors;
    this.retryAfter = options.retryAfter;
  }
}

/** Request input failed schema validation. */
export class ValidationError extends AppError {
  readonly code = "validation_failed";
}

/** The request body is not well-formed JSON. */
export class MalformedJsonError extends AppError {
  readonly code = "malformed_json";
}

/** The request body is larger than allowed. */
export class PayloadTooLargeError extends AppError {
  readonly code = "payload_too_large";
}

/** The request body has a media type the route does not accept. */
export class UnsupportedMediaTypeError extends AppError {
  readonly code = "unsupported_media_type";
}

/** Email or password was wrong; deliberately does not say which. */
export class InvalidCredentialsError extends AppError {
  readonly code = "invalid_credentials";
}

/** A credential is missing, malformed, forged or of the wrong kind. */
export class TokenInvalidError extends AppError {
  readonly code = "token_invalid";
}

/** A token was genuine but is past its expiry. */
export class TokenExpiredError extends AppError {
  readonly code = "token_expired";
}

/** A token was genuine but has been revoked. */
export class TokenRevokedError extends AppError {
  readonly code = "token_revoked";
}

/** The caller is authenticated but lacks the right. */
export class ForbiddenError extends AppError {
  readonly code = "forbidden";
}

/** The credential lacks a scope the route needs. */
export class InsufficientScopeError extends AppError {
  readonly code = "insufficient_scope";
}

/** The resource does not exist or is not visible to the caller. */
export class NotFoundError extends AppError {
  readonly code = "not_found";
}

/** The request conflicts with the current state (duplicate, lost race). */
export class ConflictError extends AppError {
  readonly code = "conflict";
}

/** A per-user cap (notes per user) is reached: delete something first. */
export class LimitReachedError extends AppError {
  readonly code = "limit_reached";
}

/** The password breaks the password policy; `errors` lists every rule. */
export class PasswordPolicyError extends AppError {
  readonly code = "password_policy";
}

/** The state of the bucket that refused a request. */
export interface RateLimitFacts {
  /** Requests allowed per window. */
  readonly limit: number;
  /** Tokens left (0 on a refusal). */
  readonly remaining: number;
  /** When the bucket is full again. */
  readonly resetAt: Date;
  /** Whole seconds until a retry can succeed. */
  readonly retryAfter: number;
}

/** Too many requests in the current window; carries the bucket's state. */
export class RateLimitedError extends AppError {
  readonly code = "rate_limited";
  readonly limit: number;
  readonly remaining: number;
  readonly resetAt: Date;

  constructor(message: string, facts: RateLimitFacts, options: { cause?: unknown } = {}) {
    super(message, { ...options, retryAfter: facts.retryAfter });
    this.limit = facts.limit;
    this.remaining = facts.remaining;
    this.resetAt = facts.resetAt;
  }
}

/** The caller's address or account is blocked by an intrusion rule or an operator. */
export class IpBlockedError extends AppError {
  readonly code = "ip_blocked";
}

/** The account's email address is not verified yet. */
export class EmailUnverifiedError extends AppError {
  readonly code = "email_unverified";
}

/** An email-verification token is unknown, used or expired (one answer for all three). */
export class VerificationTokenInvalidError extends AppError {
  readonly code = "verification_token_invalid";
}

/** The service is in lockdown (kill switch): logins and grants are refused. */
export class MaintenanceError extends AppError {
  readonly code = "maintenance";
}

/** The store or another dependency the service needs is not answering. */
export class ServiceUnavailableError extends AppError {
  readonly code = "service_unavailable";
}

/** Too many failed logins: the account is locked for a while. */
export class AccountLockedError extends AppError {
  readonly code = "account_locked";
}

/** A failed login was too recent: the progressive delay is still running. */
export class LoginThrottledError extends AppError {
  readonly code = "login_throttled";
}

/** The new password is one of the user's recent passwords. */
export class PasswordReusedError extends AppError {
  readonly code = "password_reused";
}

/** The password has expired; only a password change is allowed. */
export class PasswordExpiredError extends AppError {
  readonly code = "password_expired";
}

/** A password-reset token is unknown, used or expired (one answer for all three). */
export class ResetTokenInvalidError extends AppError {
  readonly code = "reset_token_invalid";
}

/** A cookie-authenticated request lacks the matching CSRF token. */
export class CsrfError extends AppError {
  readonly code = "csrf_failed";
}

/** The caller's address is outside the credential's IP allowlist. */
export class IpNotAllowedError extends AppError {
  readonly code = "ip_not_allowed";
}

/** An uploaded file carries malware; `message` names the signature. */
export class MalwareDetectedError extends AppError {
  readonly code = "malware_detected";
}

/** An uploaded archive breaks the archive policy (size, ratio, paths, links, nesting). */
export class ArchiveRejectedError extends AppError {
  readonly code = "archive_rejected";
}

/** The virus scanner is configured but did not answer; uploads fail closed. */
export class ScannerUnavailableError extends AppError {
  readonly code = "scanner_unavailable";
}

/** The upload would take the owner past their storage quota. */
export class QuotaExceededError extends AppError {
  readonly code = "quota_exceeded";
}
