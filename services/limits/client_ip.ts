import ipaddr from "ipaddr.js";

/**
 * The client address used for rate limits, allowlists and logs: the socket
 * peer, or — only through `trustedHops` reverse proxies — the address those
 * proxies appended to `X-Forwarded-For`. Entries a client wrote itself sit to
 * the left of the trusted ones and are never read, so spoofing cannot help.
 */
export function resolveClientIp(
  peer: string | undefined,
  forwardedFor: string | undefined,
  trustedHops: number,
): string {
  const socketIp = peer ?? "unknown";
  if (trustedHops <= 0 || forwardedFor === undefined) return socketIp;
  const chain = forwardedFor.split(",").map((s) => s.trim()).filter((s) => s !== "");
  // Each trusted proxy appends the peer it saw, so with N trusted hops the
  // client's address is the N-th entry from the right.
  const candidate = chain[chain.length - trustedHops];
  const address = candidate === undefined ? null : forwardedAddress(candidate);
  return address ?? socketIp;
}

/**
 * The address of one `X-Forwarded-For` entry: a bare IPv4 or IPv6 address, an
 * IPv4 address with a port (`203.0.113.5:4711`) or a bracketed IPv6 address
 * with or without one (`[2001:db8::1]:443`); null for anything else.
 */
export function forwardedAddress(entry: string): string | null {
  if (entry.length > 64) return null;
  if (isIpAddress(entry)) return entry;
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(entry);
  if (bracketed !== null) return isIpAddress(bracketed[1]!) ? bracketed[1]! : null;
  const withPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(entry);
  if (withPort !== null) return isIpAddress(withPort[1]!) ? withPort[1]! : null;
  return null;
}

/** True for a literal IPv4 (four decimal parts) or IPv6 address (no port, no brackets). */
export function isIpAddress(value: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(value) ||
    (value.includes(":") && ipaddr.IPv6.isValid(value));
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
