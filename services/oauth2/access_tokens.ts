import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import type { SecretKey } from "../config/config.ts";
import { hmacSha256, randomId } from "../core/crypto.ts";

/** Verified claims of an OAuth2 access token (RFC 9068 §2.2). */
export interface OAuthAccessClaims {
  iss: string;
  /** The user id, or the client id for `client_credentials` tokens. */
  sub: string;
  client_id: string;
  aud: string;
  scope: string[];
  jti: string;
  iat: number;
  exp: number;
  /** The grant the token belongs to; absent for `client_credentials`. */
  gid: string | null;
}

/** What to put in a new access token. */
export interface OAuthAccessInput {
  subject: string;
  clientId: string;
  scope: readonly string[];
  grantId: string | null;
}

/** Signs and verifies RFC 9068 `at+jwt` access tokens. */
export interface OAuthAccessTokens {
  sign(input: OAuthAccessInput, now: Date): Promise<{ token: string; jti: string; exp: number }>;
  /** Claims of a genuine, unexpired token, "expired" for a genuine expired one, else null. */
  verify(token: string, now: Date): Promise<OAuthAccessClaims | "expired" | null>;
  /** True when `token` claims to be an `at+jwt` (header only, not verified). */
  looksLikeOAuthToken(token: string): boolean;
}

/** Options of {@linkcode createOAuthAccessTokens}. */
export interface OAuthAccessTokenOptions {
  /** The access keyring (`JWT_ACCESS_SECRETS`); the first key signs. */
  keys: readonly SecretKey[];
  issuer: string;
  /** The resource the tokens are for: Bulwark's own API. */
  audience: string;
  ttlSeconds: number;
}

const ALG = "HS256";
const LEEWAY_SECONDS = 10;
const MAX_TOKEN_LENGTH = 4096;
/** Domain separation: OAuth2 tokens are signed with a key derived from, never equal to, the session key. */
const KEY_LABEL = "bulwark oauth2 at+jwt v1";
const ID = /^[A-Za-z0-9_-]{8,64}$/;
/** JOSE headers whose kind (`at+jwt` or not) is remembered. */
const MAX_HEADER_KINDS = 64;
/** Strict UTF-8; stateless between whole-input `decode` calls. */
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Creates the `at+jwt` signer. Keys are derived per kid with HMAC(secret, label), so a
 * session access token can never verify as an OAuth2 one or the other way round, even
 * before the `typ` header and claim checks refuse it.
 */
export function createOAuthAccessTokens(options: OAuthAccessTokenOptions): OAuthAccessTokens {
  const { issuer, audience } = options;
  const ring = new Map(options.keys.map((k) => [k.kid, deriveKey(k.secret)]));
  const signer = options.keys[0];
  if (signer === undefined) throw new TypeError("Cannot create OAuth2 tokens: keys is empty");
  const headerKinds = new Map<string, boolean>();

  return {
    async sign(input, now) {
      const jti = randomId();
      const iat = Math.floor(now.getTime() / 1000);
      const exp = iat + options.ttlSeconds;
      const token = await new SignJWT({
        client_id: input.clientId,
        scope: input.scope.join(" "),
        ...(input.grantId === null ? {} : { gid: input.grantId }),
      })
        .setProtectedHeader({ alg: ALG, typ: "at+jwt", kid: signer.kid })
        .setIssuer(issuer)
        .setSubject(input.subject)
        .setAudience(audience)
        .setJti(jti)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .sign(await ring.get(signer.kid)!);
      return { token, jti, exp };
    },
    async verify(token, now) {
      if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) return null;
      try {
        const { payload } = await jwtVerify(token, (header) => {
          const key = header.kid === undefined ? undefined : ring.get(header.kid);
          if (key === undefined) throw new joseErrors.JWSInvalid("unknown kid");
          return key;
        }, {
          algorithms: [ALG],
          typ: "at+jwt",
          issuer,
          audience,
          currentDate: now,
          clockTolerance: LEEWAY_SECONDS,
          requiredClaims: ["sub", "jti", "iat", "exp", "client_id", "scope"],
        });
        const { sub, jti, client_id: clientId, scope, gid } = payload;
        if (
          typeof sub !== "string" || typeof jti !== "string" || !ID.test(jti) ||
          typeof clientId !== "string" || typeof scope !== "string" ||
          (gid !== undefined && (typeof gid !== "string" || !ID.test(gid))) ||
          payload.iat! > now.getTime() / 1000 + LEEWAY_SECONDS
        ) {
          return null;
        }
        return {
          iss: issuer,
          sub,
          client_id: clientId,
          aud: audience,
          scope: scope.split(" ").filter((s) => s !== ""),
          jti,
          iat: payload.iat!,
          exp: payload.exp!,
          gid: gid ?? null,
        };
      } catch (error) {
        // The signature is checked before the claims, so an expired token here is genuine.
        if (error instanceof joseErrors.JWTExpired) return "expired";
        // Every other verification failure means "not an active token" (RFC 7662 §2.2).
        if (error instanceof joseErrors.JOSEError || error instanceof TypeError) return null;
        throw error;
      }
    },
    looksLikeOAuthToken(token) {
      const dot = token.indexOf(".");
      const head = dot === -1 ? token : token.slice(0, dot);
      if (head.length > 200) return false;
      // Asked for every Bearer token: real headers are a handful (one per kid and kind),
      // so the answer is remembered per header (bounded, oldest forgotten first: junk
      // headers can only push the real ones out until they are seen again).
      const known = headerKinds.get(head);
      if (known !== undefined) return known;
      let header: unknown;
      try {
        header = JSON.parse(UTF8.decode(Uint8Array.fromBase64(head, { alphabet: "base64url" })));
      } catch (error) {
        // Not a decodable JOSE header: not ours to judge here; the session path refuses it.
        if (error instanceof SyntaxError || error instanceof TypeError) return false;
        throw error;
      }
      const isOAuth = typeof header === "object" && header !== null &&
        (header as Record<string, unknown>).typ === "at+jwt";
      if (headerKinds.size >= MAX_HEADER_KINDS) {
        headerKinds.delete(headerKinds.keys().next().value!);
      }
      headerKinds.set(head, isOAuth);
      return isOAuth;
    },
  };
}

function deriveKey(secret: Uint8Array): Promise<CryptoKey> {
  const derived = Uint8Array.fromBase64(hmacSha256(secret, KEY_LABEL), { alphabet: "base64url" });
  return crypto.subtle.importKey("raw", derived, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);
}
