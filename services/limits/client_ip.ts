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
  return candidate !== undefined && isIpAddress(candidate) ? candidate : socketIp;
}

/** True for a literal IPv4 or IPv6 address (no port, no brackets). */
export function isIpAddress(value: string): boolean {
  if (/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(value)) {
    return true;
  }
  if (!/^[0-9a-fA-F:.]{2,45}$/.test(value) || !value.includes(":")) return false;
  try {
    return new URL(`http://[${value}]/`).hostname.length > 2;
  } catch (error) {
    // URL rejects malformed IPv6 literals; that is exactly the "not an address" answer.
    if (error instanceof TypeError) return false;
    throw error;
  }
}
