/**
 * The one home of Bulwark's crypto primitives: random ids and secrets, SHA-256
 * and HMAC digests, constant-time comparison. Every random value comes from
 * the platform CSPRNG (`crypto.getRandomValues`).
 */
import { createHash, createHmac, type KeyObject } from "node:crypto";

/** Stateless: `encode` keeps nothing between calls. */
const UTF8 = new TextEncoder();

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
 * Compares two strings in constant time for equal byte lengths: every UTF-8
 * byte is XORed into one accumulator with no early exit, as `@std/crypto`'s
 * `timingSafeEqual` does (a third of `node:crypto`'s cost through Deno's Node
 * layer, on the hot path of every API key). A length mismatch answers false
 * at once, so only compare values whose length is not secret (digests,
 * fixed-size tokens).
 */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = UTF8.encode(a);
  const y = UTF8.encode(b);
  if (x.byteLength !== y.byteLength) return false;
  let diff = 0;
  for (let i = 0; i < x.byteLength; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}

/** A SHA-256 digest fed piece by piece (streamed uploads); `digest("hex")` ends it. */
export function incrementalSha256(): ReturnType<typeof createHash> {
  return createHash("sha256");
}
