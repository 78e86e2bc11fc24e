import { createHash } from "node:crypto";
import ipaddr from "ipaddr.js";

/** SHA-256, base64url: how secrets and fingerprints are stored (never the value itself). */
export function sha256(value: string): string {
  return createHash("sha256").update(value).digest("base64url");
}

/**
 * A session fingerprint: the User-Agent, and optionally the client's network
 * prefix (/24 for IPv4, /64 for IPv6) so a roaming phone keeps its session.
 */
export function sessionFingerprint(userAgent: string, ip: string, bindIp: boolean): string {
  return sha256(`${userAgent}\n${bindIp ? ipPrefix(ip) : ""}`);
}

/**
 * The /24 (IPv4) or /64 (IPv6) network of an address, as text; IPv4-mapped IPv6
 * counts as IPv4. Anything unparseable is returned as it is.
 */
export function ipPrefix(ip: string): string {
  if (!ipaddr.isValid(ip)) return ip;
  const addr = ipaddr.process(ip);
  if (addr.kind() === "ipv4") return `${addr.toByteArray().slice(0, 3).join(".")}.0/24`;
  const parts = (addr as ipaddr.IPv6).toNormalizedString().split(":").slice(0, 4);
  return `${parts.join(":")}::/64`;
}

/** Compares two strings in constant time (for equal lengths); lengths are not secret here. */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  if (x.byteLength !== y.byteLength) return false;
  let diff = 0;
  for (let i = 0; i < x.byteLength; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}

/** 32 random bytes, base64url (reset tokens, CSRF tokens). */
export function randomSecret(): string {
  return crypto.getRandomValues(new Uint8Array(32)).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
}
