import type { Context } from "hono";
import type { AppEnv } from "./app_env.ts";

/** Options of {@linkcode createCors}. */
export interface CorsPolicyOptions {
  /** Exact origins, or `scheme://*.domain[:port]` for any single label; `*` allows any. */
  origins: readonly string[];
}

const ALLOW_METHODS = "GET,POST,PUT,PATCH,DELETE";
const ALLOW_HEADERS = "Authorization,Content-Type,X-API-Key,X-Request-ID,X-CSRF-Token";
const EXPOSE_HEADERS =
  "X-Request-ID,X-RateLimit-Limit,X-RateLimit-Remaining,X-RateLimit-Reset,Retry-After";
/** Preflight cache lifetime in seconds (one day, API.md). */
const MAX_AGE = "86400";

/**
 * CORS per API.md. The Origin is compared as a parsed origin, never as a
 * substring, so `null`, `https://allowed.example.evil.com` and look-alikes
 * get no `Access-Control-Allow-Origin` at all (and nothing is reflected).
 * Preflights are answered by the `edge` layer; other responses get headers on
 * the way out. Not `hono/cors`: it rebuilds every response and sends
 * Allow-Credentials to refused origins too.
 */
export interface Cors {
  /** The request's `Origin` when it is allowed (serialized), else null. */
  allowedOrigin(c: Context<AppEnv>): string | null;
  isPreflight(c: Context<AppEnv>): boolean;
  /** The 204 answer to a preflight; allowed origins get the `Access-Control-Allow-*` set. */
  preflight(origin: string | null): Response;
  /** `Vary: Origin` always; the allow and expose headers for an allowed origin. */
  decorate(headers: Headers, origin: string | null): void;
}

/** Builds the CORS steps of API.md for `options.origins`. */
export function createCors(options: CorsPolicyOptions): Cors {
  const allowed = originMatcher(options.origins);
  return {
    allowedOrigin: (c) => allowed(c.req.header("origin")),
    isPreflight(c) {
      return c.req.method === "OPTIONS" &&
        c.req.header("access-control-request-method") !== undefined;
    },
    preflight(origin) {
      const headers = new Headers({ Vary: "Origin" });
      if (origin !== null) {
        headers.set("Access-Control-Allow-Origin", origin);
        headers.set("Access-Control-Allow-Credentials", "true");
        headers.set("Access-Control-Allow-Methods", ALLOW_METHODS);
        headers.set("Access-Control-Allow-Headers", ALLOW_HEADERS);
        headers.set("Access-Control-Max-Age", MAX_AGE);
      }
      return new Response(null, { status: 204, headers });
    },
    decorate(h, origin) {
      h.append("Vary", "Origin");
      if (origin !== null) {
        h.set("Access-Control-Allow-Origin", origin);
        h.set("Access-Control-Allow-Credentials", "true");
        h.set("Access-Control-Expose-Headers", EXPOSE_HEADERS);
      }
    },
  };
}

/**
 * The allowed-origin check of {@linkcode corsPolicy}, for other front-end origin decisions
 * (`redirect_to` of upstream logins): the serialized origin when allowed, else null.
 */
export function originMatcher(
  origins: readonly string[],
): (origin: string | undefined) => string | null {
  const matchers = origins.map(compileOrigin);
  return function allowed(origin) {
    if (origin === undefined) return null;
    const normalized = normalizeOrigin(origin);
    if (normalized === null) return null;
    return matchers.some((m) => m(normalized)) ? normalized : null;
  };
}

/** Returns the serialized origin of `value`, or null for `null`, paths, userinfo and the like. */
function normalizeOrigin(value: string): string | null {
  if (value === "" || value.length > 2048 || !/^https?:\/\//i.test(value)) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    // An unparseable Origin header is simply not an allowed origin.
    if (error instanceof TypeError) return null;
    throw error;
  }
  // A real Origin header is exactly scheme://host[:port]; anything more is forged.
  return url.origin === value.toLowerCase() ? url.origin : null;
}

function compileOrigin(pattern: string): (origin: string) => boolean {
  if (pattern === "*") return () => true;
  const wildcard = /^(https?):\/\/\*\.(.+)$/i.exec(pattern);
  if (wildcard === null) {
    const exact = new URL(pattern).origin;
    return (origin) => origin === exact;
  }
  const base = new URL(`${wildcard[1]}://${wildcard[2]}`);
  const suffix = `.${base.hostname}`;
  return (origin) => {
    const url = new URL(origin);
    if (url.protocol !== base.protocol || url.port !== base.port) return false;
    if (!url.hostname.endsWith(suffix)) return false;
    // `*` stands for exactly one DNS label, as in TLS certificate wildcards (RFC 6125 §6.4.3).
    return /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(url.hostname.slice(0, -suffix.length));
  };
}
