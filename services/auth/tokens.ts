import { Buffer } from "node:buffer";
import { createSecretKey, type KeyObject } from "node:crypto";
import { hmacSha256, randomId, sha256, timingSafeEqual } from "../core/crypto.ts";
import { errors as joseErrors, type JWTPayload, SignJWT } from "jose";
import type { Clock } from "../core/clock.ts";
import type { SecretKey } from "../config/config.ts";
import { TokenExpiredError, TokenInvalidError } from "../core/errors.ts";
import { isRole, type Role } from "./permissions.ts";

/** Token kinds; each kind has its own keyring so one can never pass as the other. */
export type TokenType = "access" | "refresh";

/** Verified claims of an access token. */
export interface AccessClaims {
  sub: string;
  sid: string;
  jti: string;
  role: Role;
  scope: readonly string[];
  /** The password has expired: the token may only change it. */
  passwordExpired: boolean;
  iat: number;
  exp: number;
}

/** Verified claims of a refresh token. */
export interface RefreshClaims {
  sub: string;
  sid: string;
  jti: string;
  iat: number;
  exp: number;
}

/** What to put in a new access token. */
export interface AccessInput {
  userId: string;
  sessionId: string;
  role: Role;
  scope: readonly string[];
  passwordExpired?: boolean;
}

/** A signed token and its identifiers. */
export interface SignedToken {
  token: string;
  jti: string;
  expiresAt: Date;
}

/** Signs and verifies Bulwark's JWTs. */
export interface TokenService {
  signAccess(input: AccessInput, now: Date): Promise<SignedToken>;
  signRefresh(
    input: { userId: string; sessionId: string; expiresAt: Date },
    now: Date,
  ): Promise<SignedToken>;
  /**
   * @throws {TokenInvalidError} forged, malformed, wrong kind, key or issuer
   * @throws {TokenExpiredError} genuine but expired
   */
  verifyAccess(token: string): Promise<AccessClaims>;
  /**
   * {@linkcode TokenService.verifyAccess} without a promise: verification is
   * synchronous HMAC work, for callers that can answer without awaiting.
   *
   * @throws {TokenInvalidError} forged, malformed, wrong kind, key or issuer
   * @throws {TokenExpiredError} genuine but expired
   */
  verifyAccessSync(token: string): AccessClaims;
  /**
   * @throws {TokenInvalidError} forged, malformed, wrong kind, key or issuer
   * @throws {TokenExpiredError} genuine but expired
   */
  verifyRefresh(token: string): Promise<RefreshClaims>;
  /** How many verified access tokens are remembered now (never above the configured bound). */
  rememberedCount(): number;
}

/** Options of {@linkcode createTokenService}. */
export interface TokenServiceOptions {
  accessKeys: readonly SecretKey[];
  refreshKeys: readonly SecretKey[];
  issuer: string;
  accessTtlSeconds: number;
  clock: Clock;
  /**
   * Verified access tokens remembered (by the SHA-256 of the token) until
   * their expiry, so a token presented again costs one hash instead of an
   * HMAC and two JSON decodes; the oldest is forgotten first. @default 4096
   */
  verifiedCacheSize?: number;
}

/** The one signing algorithm; verification pins it (RFC 8725 §3.1). */
const ALG = "HS256";
/** Clock skew tolerated on `exp`/`iat`/`nbf` (RFC 7519 §4.1.4 "small leeway"). */
const LEEWAY_SECONDS = 10;
/** Longest token accepted for parsing; real ones are < 1 KiB. */
const MAX_TOKEN_LENGTH = 4096;

const ID = /^[A-Za-z0-9_-]{8,64}$/;

/** Strict UTF-8 for JOSE segments; stateless between whole-input `decode` calls. */
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Creates the token service over two separate keyrings. */
export function createTokenService(options: TokenServiceOptions): TokenService {
  const { issuer, clock } = options;
  // Imported once as non-extractable HMAC keys: jose would re-import raw bytes on every call.
  const rings: Record<TokenType, ReadonlyMap<string, Promise<CryptoKey>>> = {
    access: new Map(options.accessKeys.map((k) => [k.kid, importHmacKey(k.secret)])),
    refresh: new Map(options.refreshKeys.map((k) => [k.kid, importHmacKey(k.secret)])),
  };
  const signers: Record<TokenType, SecretKey> = {
    access: first(options.accessKeys, "accessKeys"),
    refresh: first(options.refreshKeys, "refreshKeys"),
  };

  async function sign(typ: TokenType, claims: JWTPayload, subject: string, now: Date, exp: Date) {
    const jti = randomId();
    const key = signers[typ];
    const token = await new SignJWT({ ...claims, typ })
      .setProtectedHeader({ alg: ALG, kid: key.kid, typ: "JWT" })
      .setIssuer(issuer)
      .setSubject(subject)
      .setJti(jti)
      .setIssuedAt(Math.floor(now.getTime() / 1000))
      .setExpirationTime(Math.floor(exp.getTime() / 1000))
      .sign(await rings[typ].get(key.kid)!);
    return { token, jti, expiresAt: exp };
  }

  // HMAC keys for verification, imported once per kid (node:crypto KeyObjects,
  // used synchronously: a WebCrypto verify costs a promise and a thread hop per request).
  const verifyRings: Record<TokenType, ReadonlyMap<string, KeyObject>> = {
    access: new Map(options.accessKeys.map((k) => [k.kid, createSecretKey(k.secret)])),
    refresh: new Map(options.refreshKeys.map((k) => [k.kid, createSecretKey(k.secret)])),
  };

  /**
   * Verifies a compact HS256 JWS synchronously, in jose's order and with
   * jose's error classes as causes: shape, protected header (alg pinned, no
   * `crit`/`b64` extensions), kid within this kind's ring, the signature (its
   * one canonical base64url spelling, compared in constant time), and only
   * then the claims (RFC 8725 §3.1, §3.4).
   */
  function verify(typ: TokenType, token: string): JWTPayload {
    if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) {
      throw new TokenInvalidError("Token is malformed");
    }
    const parts = token.split(".");
    if (parts.length !== 3) throw invalid(new joseErrors.JWSInvalid("Invalid Compact JWS"));
    const [encodedHeader, encodedPayload, signature] = parts as [string, string, string];
    const header = decodeSegment(encodedHeader);
    if (header === null) {
      throw invalid(new joseErrors.JWSInvalid("Invalid JWS Protected Header"));
    }
    if (typeof header.alg !== "string") {
      throw invalid(new joseErrors.JWSInvalid('JWS "alg" (Algorithm) Header Parameter missing'));
    }
    if (header.alg !== ALG) {
      throw invalid(
        new joseErrors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed'),
      );
    }
    if ("crit" in header || "b64" in header) {
      throw invalid(new joseErrors.JOSENotSupported("JWS extensions are not supported"));
    }
    // Pin the key by kid within this kind's ring; unknown kids fail before any HMAC.
    const key = typeof header.kid === "string" ? verifyRings[typ].get(header.kid) : undefined;
    if (key === undefined) throw new TokenInvalidError("Token key is unknown");
    // Both sides are compared as base64url text: only the one canonical spelling
    // of the MAC passes (jose's decoder also took padding and stray bits).
    if (!timingSafeEqual(signature, hmacSha256(key, `${encodedHeader}.${encodedPayload}`))) {
      throw invalid(new joseErrors.JWSSignatureVerificationFailed());
    }
    const payload = decodeSegment(encodedPayload);
    if (payload === null) {
      throw invalid(new joseErrors.JWTInvalid("JWT Claims Set must be a top-level JSON object"));
    }
    checkClaims(typ, payload);
    return payload;
  }

  /** The claim checks jose's `jwtVerify` made (required claims, iss, nbf, exp), then ours. */
  function checkClaims(typ: TokenType, payload: JWTPayload): void {
    const claimFailed = (message: string, claim: string, reason: string) =>
      invalid(new joseErrors.JWTClaimValidationFailed(message, payload, claim, reason));
    for (const claim of ["iss", "sub", "jti", "iat", "exp"] as const) {
      if (payload[claim] === undefined) {
        throw claimFailed(`missing required "${claim}" claim`, claim, "missing");
      }
    }
    if (payload.iss !== issuer) {
      throw claimFailed('unexpected "iss" claim value', "iss", "check_failed");
    }
    // Whole seconds, as jose compares: "less than 10 s late" is still valid.
    const nowMs = clock.now().getTime();
    const now = Math.floor(nowMs / 1000);
    for (const claim of ["iat", "exp", "nbf"] as const) {
      if (payload[claim] !== undefined && typeof payload[claim] !== "number") {
        throw claimFailed(`"${claim}" claim must be a number`, claim, "invalid");
      }
    }
    if (payload.nbf !== undefined && payload.nbf > now + LEEWAY_SECONDS) {
      throw claimFailed('"nbf" claim timestamp check failed', "nbf", "check_failed");
    }
    if (payload.exp! <= now - LEEWAY_SECONDS) {
      // The signature was checked above, so an expired token here is genuine.
      throw new TokenExpiredError("Token has expired", {
        cause: new joseErrors.JWTExpired(
          '"exp" claim timestamp check failed',
          payload,
          "exp",
          "check_failed",
        ),
      });
    }
    if (payload.typ !== typ) throw new TokenInvalidError(`Token is not an ${typ} token`);
    if (
      typeof payload.sid !== "string" || !ID.test(payload.sid) ||
      typeof payload.jti !== "string" || !ID.test(payload.jti) ||
      typeof payload.sub !== "string" || !ID.test(payload.sub)
    ) {
      throw new TokenInvalidError("Token claims are malformed");
    }
    // jose checked iat only with maxTokenAge; a token from the future is forged or mis-clocked.
    if (payload.iat! > nowMs / 1000 + LEEWAY_SECONDS) {
      throw new TokenInvalidError("Token was issued in the future");
    }
  }

  // Only what the signature and claims proved is remembered, never whether the
  // token is revoked: the session check after this runs on every request.
  const verifiedCacheSize = options.verifiedCacheSize ?? 4096;
  const verified = new Map<string, Readonly<AccessClaims>>();

  function verifyAccessSync(token: string): AccessClaims {
    if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) {
      throw new TokenInvalidError("Token is malformed");
    }
    const digest = sha256(token);
    const known = verified.get(digest);
    if (known !== undefined) {
      // Still within its lifetime (as checkClaims judges it): the same answer as a full check.
      if (known.exp > Math.floor(clock.now().getTime() / 1000) - LEEWAY_SECONDS) return known;
      // Expired since: verified again, so the refusal is the full check's own.
      verified.delete(digest);
    }
    const claims = verifyAccessClaims(token);
    if (verifiedCacheSize > 0) {
      if (verified.size >= verifiedCacheSize) verified.delete(verified.keys().next().value!);
      verified.set(digest, claims);
    }
    return claims;
  }

  function verifyAccessClaims(token: string): Readonly<AccessClaims> {
    const p = verify("access", token);
    if (typeof p.role !== "string" || !isRole(p.role) || typeof p.scope !== "string") {
      throw new TokenInvalidError("Token claims are malformed");
    }
    // Frozen: the same object answers every later presentation of the token.
    return Object.freeze({
      sub: p.sub!,
      sid: p.sid as string,
      jti: p.jti!,
      role: p.role,
      scope: Object.freeze(p.scope.split(" ").filter((s) => s !== "")),
      passwordExpired: p.pwd_expired === true,
      iat: p.iat!,
      exp: p.exp!,
    });
  }

  return {
    signAccess(input, now) {
      const exp = new Date(now.getTime() + options.accessTtlSeconds * 1000);
      return sign(
        "access",
        {
          sid: input.sessionId,
          role: input.role,
          scope: input.scope.join(" "),
          ...(input.passwordExpired === true ? { pwd_expired: true } : {}),
        },
        input.userId,
        now,
        exp,
      );
    },
    signRefresh(input, now) {
      return sign("refresh", { sid: input.sessionId }, input.userId, now, input.expiresAt);
    },
    verifyAccess(token) {
      try {
        return Promise.resolve(verifyAccessSync(token));
      } catch (error) {
        return Promise.reject(error);
      }
    },
    verifyAccessSync,
    rememberedCount: () => verified.size,
    verifyRefresh(token) {
      try {
        const p = verify("refresh", token);
        return Promise.resolve({
          sub: p.sub!,
          sid: p.sid as string,
          jti: p.jti!,
          iat: p.iat!,
          exp: p.exp!,
        });
      } catch (error) {
        return Promise.reject(error);
      }
    },
  };
}

/** A refusal whose cause is the jose error class jose itself would have thrown. */
function invalid(cause: Error): TokenInvalidError {
  return new TokenInvalidError("Token is invalid", { cause });
}

/** Strict base64url (no padding, no other characters) of a JSON object; null otherwise. */
function decodeSegment(segment: string): Record<string, unknown> | null {
  if (!/^[A-Za-z0-9_-]+$/.test(segment)) return null;
  let value: unknown;
  try {
    value = JSON.parse(UTF8.decode(
      Buffer.from(segment, "base64url"),
    ));
  } catch (error) {
    // Bad UTF-8 or bad JSON: either way not a JOSE segment.
    if (error instanceof SyntaxError || error instanceof TypeError) return null;
    throw error;
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : null;
}

function importHmacKey(secret: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    secret as BufferSource,
    { name: "HMAC", hash: "SHA-256" },
    false,
    [
      "sign",
      "verify",
    ],
  );
}

function first(keys: readonly SecretKey[], name: string): SecretKey {
  const key = keys[0];
  if (key === undefined) throw new TypeError(`Cannot create token service: ${name} is empty`);
  return key;
}
