import { randomId } from "../core/crypto.ts";
import { errors as joseErrors, type JWTPayload, jwtVerify, SignJWT } from "jose";
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
  scope: string[];
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
   * @throws {TokenInvalidError} forged, malformed, wrong kind, key or issuer
   * @throws {TokenExpiredError} genuine but expired
   */
  verifyRefresh(token: string): Promise<RefreshClaims>;
}

/** Options of {@linkcode createTokenService}. */
export interface TokenServiceOptions {
  accessKeys: readonly SecretKey[];
  refreshKeys: readonly SecretKey[];
  issuer: string;
  accessTtlSeconds: number;
  clock: Clock;
}

/** The one signing algorithm; verification pins it (RFC 8725 §3.1). */
const ALG = "HS256";
/** Clock skew tolerated on `exp`/`iat`/`nbf` (RFC 7519 §4.1.4 "small leeway"). */
const LEEWAY_SECONDS = 10;
/** Longest token accepted for parsing; real ones are < 1 KiB. */
const MAX_TOKEN_LENGTH = 4096;

const ID = /^[A-Za-z0-9_-]{8,64}$/;

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

  async function verify(typ: TokenType, token: string): Promise<JWTPayload> {
    if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) {
      throw new TokenInvalidError("Token is malformed");
    }
    const now = clock.now().getTime();
    try {
      const { payload } = await jwtVerify(token, (header) => {
        // Pin the key by kid within this kind's ring; unknown kids fail before any HMAC.
        const secret = header.kid === undefined ? undefined : rings[typ].get(header.kid);
        if (secret === undefined) throw new TokenInvalidError("Token key is unknown");
        return secret;
      }, {
        algorithms: [ALG],
        issuer,
        currentDate: new Date(now),
        clockTolerance: LEEWAY_SECONDS,
        requiredClaims: ["sub", "jti", "iat", "exp"],
      });
      if (payload.typ !== typ) throw new TokenInvalidError(`Token is not an ${typ} token`);
      if (
        typeof payload.sid !== "string" || !ID.test(payload.sid) ||
        typeof payload.jti !== "string" || !ID.test(payload.jti) ||
        typeof payload.sub !== "string" || !ID.test(payload.sub)
      ) {
        throw new TokenInvalidError("Token claims are malformed");
      }
      // jose checks iat only with maxTokenAge; a token from the future is forged or mis-clocked.
      if (typeof payload.iat !== "number" || payload.iat > now / 1000 + LEEWAY_SECONDS) {
        throw new TokenInvalidError("Token was issued in the future");
      }
      return payload;
    } catch (error) {
      if (error instanceof TokenInvalidError) throw error;
      // Signature is checked before claims, so an expired token here is genuine.
      if (error instanceof joseErrors.JWTExpired) {
        throw new TokenExpiredError("Token has expired", { cause: error });
      }
      if (error instanceof joseErrors.JOSEError || error instanceof TypeError) {
        throw new TokenInvalidError("Token is invalid", { cause: error });
      }
      throw error;
    }
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
    async verifyAccess(token) {
      const p = await verify("access", token);
      if (typeof p.role !== "string" || !isRole(p.role) || typeof p.scope !== "string") {
        throw new TokenInvalidError("Token claims are malformed");
      }
      return {
        sub: p.sub!,
        sid: p.sid as string,
        jti: p.jti!,
        role: p.role,
        scope: p.scope.split(" ").filter((s) => s !== ""),
        passwordExpired: p.pwd_expired === true,
        iat: p.iat!,
        exp: p.exp!,
      };
    },
    async verifyRefresh(token) {
      const p = await verify("refresh", token);
      return { sub: p.sub!, sid: p.sid as string, jti: p.jti!, iat: p.iat!, exp: p.exp! };
    },
  };
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
