/**
 * The one home of Bulwark's crypto primitives: random ids and secrets, SHA-256
 * and HMAC digests, constant-time comparison. Every random value comes from
 * the platform CSPRNG (`crypto.getRandomValues`).
 */
import { Buffer } from "node:buffer";
import {
  createHash,
  createHmac,
  type KeyObject,
  timingSafeEqual as nodeTimingSafeEqual,
} from "node:crypto";

/** `bytes` random bytes, base64url without padding. */
export function randomToken(bytes: number): string {
  if (!Number.isInteger(bytes) || bytes < 16) {
    throw new RangeError("Cannot make a random token: at least 16 bytes are needed");
  }
  return crypto.getRandomValues(new Uint8Array(bytes)).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
}

/** 128 random bits, base64url (22 characters): unguessable ids for records, sessions and jtis. */
export function randomId(): string {
  return randomToken(16);
}

/** 256 random bits, base64url (43 characters): reset, verification and CSRF tokens, keys. */
export function randomSecret(): string {
  return randomToken(32);
}

/** SHA-256 of `value`, base64url: how secrets and fingerprints are stored (never the value). */
export function sha256(value: string | Uint8Array): string {
  return createHash("sha256").update(value).digest("base64url");
}

/** SHA-256 of `value`, hex (upload digests, hashed bucket names). */
export function sha256Hex(value: string | Uint8Array): string {
  return createHash("sha256").update(value).digest("hex");
}

/** HMAC-SHA256 of `value` under `key`, base64url. */
export function hmacSha256(
  key: string | Uint8Array | KeyObject,
  value: string | Uint8Array,
): string {
  return createHmac("sha256", key).update(value).digest("base64url");
}

/**
 * Compares two strings in constant time for equal byte lengths (`node:crypto`
 * `timingSafeEqual`); a length mismatch answers false at once, so only compare
 * values whose length is not secret (digests, fixed-size tokens).
 */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.byteLength === y.byteLength && nodeTimingSafeEqual(x, y);
}

/** A SHA-256 digest fed piece by piece (streamed uploads); `digest("hex")` ends it. */
export function incrementalSha256(): ReturnType<typeof createHash> {
  return createHash("sha256");
}
