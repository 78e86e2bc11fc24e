import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./app_env.ts";

/** Options of {@linkcode securityHeaders}. */
export interface SecurityHeadersOptions {
  /** `X-XSS-Protection` value; empty omits it. @default "1; mode=block" */
  xssProtection?: string;
}

/** Path prefixes whose responses must never be cached (API.md: tokens and keys). */
const NO_STORE = /^\/(auth|oauth2)(\/|$)|^\/api-keys/;

/** The security headers of API.md, as `[name, value]` pairs (the benchmark reuses them). */
export function securityHeaderList(xssProtection = "1; mode=block"): [string, string][] {
  const headers: [string, string][] = [
    // RFC 6797; one year with subdomains (OWASP HTTP Headers Cheat Sheet).
    ["Strict-Transport-Security", "max-age=31536000; includeSubDomains"],
    ["X-Frame-Options", "DENY"],
    ["X-Content-Type-Options", "nosniff"],
    ["Referrer-Policy", "strict-origin-when-cross-origin"],
    ["Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"],
    ["Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"],
    ["Cross-Origin-Opener-Policy", "same-origin"],
    ["Cross-Origin-Resource-Policy", "same-origin"],
  ];
  if (xssProtection !== "") headers.push(["X-XSS-Protection", xssProtection]);
  return headers;
}

/**
 * The headers of API.md on every response. JSON gets `default-src 'none'`;
 * a route serving HTML sets its own nonce-based CSP, which is kept.
 *
 * Written straight onto the finished response: Hono's `secureHeaders` goes
 * through `c.header()` after `next()`, which re-wraps the response and cost
 * 75% of `/health` throughput in `deno task bench`.
 */
export function securityHeaders(options: SecurityHeadersOptions = {}): MiddlewareHandler<AppEnv> {
  const headers = securityHeaderList(options.xssProtection ?? "1; mode=block");
  return async function securityHeaders(c, next) {
    await next();
    const h = c.res.headers;
    for (const [name, value] of headers) if (!h.has(name)) h.set(name, value);
    if (NO_STORE.test(c.req.path)) h.set("Cache-Control", "no-store");
    h.delete("Server");
    h.delete("X-Powered-By");
    // API.md: JSON is always declared as UTF-8.
    if (h.get("Content-Type") === "application/json") {
      h.set("Content-Type", "application/json; charset=utf-8");
    }
  };
}
