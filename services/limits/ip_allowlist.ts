import ipaddr from "ipaddr.js";

/** A parsed CIDR range. */
export type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * Parses a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address (taken as /32 or /128).
 * Returns null when it is neither.
 */
export function parseCidr(text: string): Cidr | null {
  const value = text.trim();
  try {
    if (value.includes("/")) {
      if (!ipaddr.isValidCIDR(value)) return null;
      return ipaddr.parseCIDR(value);
    }
    if (!ipaddr.isValid(value)) return null;
    const addr = ipaddr.process(value);
    return [addr, addr.kind() === "ipv4" ? 32 : 128];
  } catch (error) {
    // ipaddr.js throws plain Errors for malformed input; "not a CIDR" is the answer.
    if (error instanceof Error) return null;
    throw error;
  }
}

/** Canonical text of a CIDR (`10.0.0.0/8`), for storage and display. */
export function formatCidr(cidr: Cidr): string {
  return `${cidr[0].toString()}/${cidr[1]}`;
}

/**
 * True when `ip` is inside one of `ranges`. IPv4-mapped IPv6 addresses
 * (`::ffff:10.1.2.3`) are compared as IPv4, so a dual-stack socket cannot slip past.
 */
export function ipAllowed(ip: string, ranges: readonly string[]): boolean {
  if (!ipaddr.isValid(ip)) return false;
  const addr = ipaddr.process(ip);
  return ranges.some((text) => {
    const cidr = parseCidr(text);
    return cidr !== null && addr.kind() === cidr[0].kind() && addr.match(cidr);
  });
}
