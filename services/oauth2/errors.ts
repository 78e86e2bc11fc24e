/**
 * RFC 6749 errors: the protocol's own error format (`{error, error_description}`,
 * §4.1.2.1 and §5.2), kept apart from problem+json. `routes/oauth2/errors.ts`
 * gives them their HTTP status; services only name the error.
 *
 * @module
 */

/** RFC 6749 §4.1.2.1 / §5.2 and RFC 7009 §2.2.1 error codes. */
export const OAUTH_ERROR_CODES = [
  "invalid_request",
  "invalid_client",
  "invalid_grant",
  "unauthorized_client",
  "unsupported_grant_type",
  "unsupported_response_type",
  "unsupported_token_type",
  "invalid_scope",
  "access_denied",
  "server_error",
  "temporarily_unavailable",
] as const;

/** One RFC 6749 error code. */
export type OAuthErrorCode = typeof OAUTH_ERROR_CODES[number];

/** A refusal in the OAuth2 protocol's own terms; `description` is safe to show the client. */
export class OAuthError extends Error {
  readonly error: OAuthErrorCode;

  constructor(error: OAuthErrorCode, description: string, options: { cause?: unknown } = {}) {
    super(description, options);
    this.name = "OAuthError";
    this.error = error;
  }
}

/** Client authentication failed (RFC 6749 §5.2): always the same answer, whatever the reason. */
export function invalidClient(): OAuthError {
  return new OAuthError("invalid_client", "Client authentication failed");
}
