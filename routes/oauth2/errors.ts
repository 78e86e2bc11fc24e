import type { Context } from "hono";
import type { AppEnv } from "../../middleware/app_env.ts";
import { OAuthError } from "../../services/oauth2/errors.ts";
import type { ClientCredentials } from "../../services/oauth2/token_endpoint.ts";

/**
 * Wraps an OAuth2 endpoint handler so an {@linkcode OAuthError} becomes the RFC 6749 §5.2
 * response (`{error, error_description}`, 401 + `WWW-Authenticate: Basic` for
 * `invalid_client`, 400 otherwise); every other error still reaches the root handler and
 * becomes problem+json.
 */
export function oauthHandler(
  handler: (c: Context<AppEnv>) => Promise<Response>,
): (c: Context<AppEnv>) => Promise<Response> {
  return async function oauthEndpoint(c) {
    try {
      return await handler(c);
    } catch (error) {
      if (error instanceof OAuthError) return oauthErrorResponse(c, error);
      throw error;
    }
  };
}

/** The one place writing an RFC 6749 error body. */
export function oauthErrorResponse(c: Context<AppEnv>, error: OAuthError): Response {
  const status = error.error === "invalid_client"
    ? 401
    : error.error === "server_error"
    ? 500
    : 400;
  const headers = new Headers({
    "Content-Type": "application/json; charset=utf-8",
    "Cache-Control": "no-store",
    Pragma: "no-cache",
  });
  if (status === 401) headers.set("WWW-Authenticate", 'Basic realm="bulwark", charset="UTF-8"');
  headers.set("X-Request-ID", c.get("requestId"));
  return new Response(
    JSON.stringify({ error: error.error, error_description: error.message }),
    { status, headers },
  );
}

/**
 * Reads an `application/x-www-form-urlencoded` body (RFC 6749 §3.2): other media types and
 * repeated parameters are `invalid_request`.
 *
 * @throws {OAuthError}
 */
export async function readForm(c: Context<AppEnv>): Promise<Record<string, string>> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/x-www-form-urlencoded\s*(;|$)/i.test(type)) {
    throw new OAuthError("invalid_request", "Expected an application/x-www-form-urlencoded body");
  }
  const out: Record<string, string> = {};
  for (const [name, value] of new URLSearchParams(await c.req.text())) {
    if (Object.hasOwn(out, name)) {
      throw new OAuthError("invalid_request", `Parameter ${name} is repeated`);
    }
    if (value !== "") out[name] = value;
  }
  return out;
}

/**
 * The client's credentials: HTTP Basic (RFC 6749 §2.3.1, form-urlencoded id and secret) or
 * `client_id`/`client_secret` in the body.
 *
 * @throws {OAuthError} `invalid_client` for a malformed Basic header
 */
export function clientCredentials(
  c: Context<AppEnv>,
  form: Readonly<Record<string, string>>,
): ClientCredentials {
  const header = c.req.header("authorization");
  let basic: ClientCredentials["basic"] = null;
  if (header !== undefined) {
    const match = /^Basic ([A-Za-z0-9+/]+=*)$/i.exec(header.trim());
    if (match === null) throw new OAuthError("invalid_client", "Client authentication failed");
    let decoded: string;
    try {
      decoded = new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.fromBase64(match[1]!));
    } catch (error) {
      if (error instanceof SyntaxError || error instanceof TypeError) {
        throw new OAuthError("invalid_client", "Client authentication failed");
      }
      throw error;
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) throw new OAuthError("invalid_client", "Client authentication failed");
    try {
      basic = {
        id: decodeURIComponent(decoded.slice(0, colon).replaceAll("+", " ")),
        secret: decodeURIComponent(decoded.slice(colon + 1).replaceAll("+", " ")),
      };
    } catch (error) {
      if (!(error instanceof URIError)) throw error;
      throw new OAuthError("invalid_client", "Client authentication failed");
    }
  }
  return { basic, formId: form.client_id, formSecret: form.client_secret };
}
