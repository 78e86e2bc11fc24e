import type { MiddlewareHandler } from "hono";
import { secureHeaders } from "hono/secure-headers";
import type { AppEnv } from "./app_env.ts";

/** Options of {@linkcode securityHeaders}. */
export interface SecurityHeadersOptions {
  /** `X-XSS-Protection` value; empty omits it. @default "1; mode=block" */
  xssProtection?: string;
}

/** Path prefixes whose responses must never be cached (API.md: tokens and keys). */
const NO_STORE = /^\/(auth|oauth2)(\/|$)|^\/api-keys/;

/**
 * The headers of API.md on every response. JSON gets `default-src 'none'`;
 * a route serving HTML sets its own nonce-based CSP, which is kept.
 */
export function securityHeaders(options: SecurityHeadersOptions = {}): MiddlewareHandler<AppEnv> {
  const xss = options.xssProtection ?? "1; mode=block";
  const base = secureHeaders({
    // RFC 6797; one year with subdomains (OWASP HSTS Cheat Sheet).
    strictTransportSecurity: "max-age=31536000; includeSubDomains",
    xFrameOptions: "DENY",
    xContentTypeOptions: "nosniff",
    referrerPolicy: "strict-origin-when-cross-origin",
    xXssProtection: xss === "" ? false : xss,
    crossOriginOpenerPolicy: "same-origin",
    crossOriginResourcePolicy: "same-origin",
    crossOriginEmbedderPolicy: false,
    contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    permissionsPolicy: {
      camera: [],
      microphone: [],
      geolocation: [],
      payment: [],
      usb: [],
    },
    removePoweredBy: true,
    overwrite: false,
  });
  return async function securityHeaders(c, next) {
    await base(c, next);
    if (NO_STORE.test(c.req.path)) c.res.headers.set("Cache-Control", "no-store");
    c.res.headers.delete("Server");
    // API.md: JSON is always declared as UTF-8.
    if (c.res.headers.get("Content-Type") === "application/json") {
      c.res.headers.set("Content-Type", "application/json; charset=utf-8");
    }
  };
}
