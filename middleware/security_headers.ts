import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "./app_env.ts";

/** Options of {@linkcode securityHeaders}. */
export interface SecurityHeadersOptions {
  /** `X-XSS-Protection` value; empty omits it. @default "1; mode=block" */
  xssProtection?: string;
}

/** Path prefixes whose responses must never be cached (API.md: tokens and keys). */
const NO_STORE = /^\/(auth|oauth2)(\/|$)|^\/api-keys/;

// The values of API.md's "Security headers" table, named once for both exports below.
/** RFC 6797; one year with subdomains (OWASP HTTP Headers Cheat Sheet). */
const HSTS = "max-age=31536000; includeSubDomains";
const REFERRER_POLICY = "strict-origin-when-cross-origin";
const DENIED_FEATURES = ["camera", "microphone", "geolocation", "payment", "usb"] as const;

/** The security headers of API.md, as `[name, value]` pairs (the benchmark reuses them). */
export function securityHeaderList(xssProtection = "1; mode=block"): [string, string][] {
  const headers: [string, string][] = [
    ["Strict-Transport-Security", HSTS],
    ["X-Frame-Options", "DENY"],
    ["X-Content-Type-Options", "nosniff"],
    ["Referrer-Policy", REFERRER_POLICY],
    ["Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"],
    ["Permissions-Policy", DENIED_FEATURES.map((f) => `${f}=()`).join(", ")],
    ["Cross-Origin-Opener-Policy", "same-origin"],
    ["Cross-Origin-Resource-Policy", "same-origin"],
  ];
  if (xssProtection !== "") headers.push(["X-XSS-Protection", xssProtection]);
  return headers;
}

/**
 * Writes API.md's security headers onto the response, in one pass over the
 * list: a `Content-Security-Policy` the route already set is kept (`/docs`
 * sets its own nonce-based CSP, uploads a sandboxing one; everything else gets
 * `default-src 'none'`); the other headers are the same on every response. Adds `Cache-Control: no-store` on token and key
 * routes, removes `Server` and `X-Powered-By`, and declares JSON as UTF-8.
 * The "edge" layer (`edge.ts`) calls it for every response; not Hono's
 * `secureHeaders`, whose extra pass per response bought nothing here.
 */
export function securityHeaderWriter(
  options: SecurityHeadersOptions = {},
): (c: Context<AppEnv>) => void {
  const list = securityHeaderList(options.xssProtection ?? "1; mode=block");
  const csp = list.find(([name]) => name === "Content-Security-Policy")!;
  const rest = list.filter((entry) => entry !== csp);
  return function writeSecurityHeaders(c) {
    const h = c.res.headers;
    // Deno's Headers scan their list on every has/set, and these writes were
    // most of /health's in-process cost: only the CSP, the one header routes
    // set themselves, is looked up first; the rest are set outright.
    if (!h.has(csp[0])) h.set(csp[0], csp[1]);
    for (const [name, value] of rest) h.set(name, value);
    if (NO_STORE.test(c.req.path)) h.set("Cache-Control", "no-store");
    h.delete("Server");
    h.delete("X-Powered-By");
    // API.md: JSON is always declared as UTF-8.
    if (h.get("Content-Type") === "application/json") {
      h.set("Content-Type", "application/json; charset=utf-8");
    }
  };
}

/** {@linkcode securityHeaderWriter} as a middleware of its own (the app uses `edge.ts`). */
export function securityHeaders(options: SecurityHeadersOptions = {}): MiddlewareHandler<AppEnv> {
  const write = securityHeaderWriter(options);
  return async function securityHeaders(c, next) {
    await next();
    write(c);
  };
}
