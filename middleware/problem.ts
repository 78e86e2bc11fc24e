import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import {
  AppError,
  type FieldError,
  type ProblemCode,
  RateLimitedError,
} from "../services/core/errors.ts";
import type { AppEnv } from "./app_env.ts";

interface ProblemType {
  readonly status: ContentfulStatusCode;
  readonly title: string;
}

/** The one table from error `code` to HTTP status and title (API.md); every code has a row. */
export const PROBLEM_TYPES: Readonly<Record<ProblemCode, ProblemType>> = {
  validation_failed: { status: 422, title: "Request validation failed" },
  malformed_json: { status: 400, title: "Malformed JSON body" },
  bad_request: { status: 400, title: "Bad request" },
  payload_too_large: { status: 413, title: "Payload too large" },
  quota_exceeded: { status: 413, title: "Storage quota exceeded" },
  unsupported_media_type: { status: 415, title: "Unsupported media type" },
  invalid_credentials: { status: 401, title: "Invalid credentials" },
  token_invalid: { status: 401, title: "Invalid token" },
  token_expired: { status: 401, title: "Token expired" },
  token_revoked: { status: 401, title: "Token revoked" },
  account_locked: { status: 423, title: "Account locked" },
  login_throttled: { status: 429, title: "Login throttled" },
  rate_limited: { status: 429, title: "Too many requests" },
  forbidden: { status: 403, title: "Forbidden" },
  insufficient_scope: { status: 403, title: "Insufficient scope" },
  ip_not_allowed: { status: 403, title: "IP address not allowed" },
  ip_blocked: { status: 403, title: "Blocked" },
  email_unverified: { status: 403, title: "Email address not verified" },
  not_found: { status: 404, title: "Not found" },
  method_not_allowed: { status: 405, title: "Method not allowed" },
  conflict: { status: 409, title: "Conflict" },
  limit_reached: { status: 409, title: "Limit reached" },
  password_policy: { status: 422, title: "Password does not meet the policy" },
  password_reused: { status: 422, title: "Password was used recently" },
  password_expired: { status: 403, title: "Password expired" },
  csrf_failed: { status: 403, title: "CSRF check failed" },
  reset_token_invalid: { status: 400, title: "Invalid or expired reset token" },
  verification_token_invalid: { status: 400, title: "Invalid or expired verification token" },
  malware_detected: { status: 422, title: "Malware detected" },
  archive_rejected: { status: 422, title: "Archive rejected" },
  scanner_unavailable: { status: 503, title: "Scanner unavailable" },
  service_unavailable: { status: 503, title: "Service unavailable" },
  maintenance: { status: 503, title: "Service in maintenance" },
  internal: { status: 500, title: "Internal server error" },
};

const TYPE_BASE = "https://bulwark.dev/problems/";

const STATUS_CODES: Partial<Record<number, ProblemCode>> = {
  400: "malformed_json",
  401: "token_invalid",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  422: "validation_failed",
  429: "rate_limited",
  503: "service_unavailable",
};

interface ProblemInit {
  code: ProblemCode;
  detail: string;
  errors?: readonly FieldError[] | undefined;
  retryAfter?: number | undefined;
  headers?: Readonly<Record<string, string>> | undefined;
}

/** Builds the RFC 9457 response; the only place that writes an error body. */
export function problemResponse(c: Context<AppEnv>, init: ProblemInit): Response {
  const type = PROBLEM_TYPES[init.code];
  const requestId = c.get("requestId") ?? crypto.randomUUID();
  const body: Record<string, unknown> = {
    type: `${TYPE_BASE}${init.code}`,
    title: type.title,
    status: type.status,
    detail: init.detail,
    code: init.code,
    instance: `urn:request:${requestId}`,
    request_id: requestId,
  };
  if (init.errors !== undefined) body.errors = init.errors;
  const headers = new Headers(init.headers);
  headers.set("Content-Type", "application/problem+json; charset=utf-8");
  if (type.status === 401) {
    // RFC 6750 §3: name the scheme; add error="invalid_token" only when a token was presented.
    const presented = init.code !== "invalid_credentials" && (c.get("authError") ?? null) !== null;
    headers.set("WWW-Authenticate", presented ? `Bearer error="invalid_token"` : "Bearer");
  }
  if (init.retryAfter !== undefined) {
    headers.set("Retry-After", String(Math.max(1, Math.ceil(init.retryAfter))));
  }
  return new Response(JSON.stringify(body), { status: type.status, headers });
}

/** The `X-RateLimit-*` headers of a bucket's state (API.md "Rate limits"). */
export function rateLimitHeaders(
  state: { limit: number; remaining: number; resetAt: Date },
): Record<string, string> {
  return {
    "X-RateLimit-Limit": String(state.limit),
    "X-RateLimit-Remaining": String(state.remaining),
    "X-RateLimit-Reset": String(Math.ceil(state.resetAt.getTime() / 1000)),
  };
}

/**
 * Maps typed errors to problem+json, turning their facts into headers
 * (`Retry-After`, `X-RateLimit-*`); anything unknown is logged once and becomes a bare 500.
 */
export function onError(error: Error, c: Context<AppEnv>): Response {
  if (error instanceof AppError) {
    return problemResponse(c, {
      code: error.code,
      detail: error.message,
      errors: error.errors,
      retryAfter: error.retryAfter,
      headers: error instanceof RateLimitedError ? rateLimitHeaders(error) : undefined,
    });
  }
  if (error instanceof HTTPException) {
    const code = STATUS_CODES[error.status] ?? (error.status >= 500 ? "internal" : "bad_request");
    // Framework messages can name internals; send our own title instead.
    return problemResponse(c, { code, detail: PROBLEM_TYPES[code].title });
  }
  c.get("logger")?.error("unhandled error", { request_id: c.get("requestId"), error });
  return problemResponse(c, { code: "internal", detail: "An unexpected error occurred" });
}

/** Unknown routes answer 404 problem+json. */
export function notFound(c: Context<AppEnv>): Response {
  return problemResponse(c, { code: "not_found", detail: "No such route" });
}
