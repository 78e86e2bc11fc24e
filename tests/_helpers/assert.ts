/** Assertions in std's naming, built on `node:assert/strict`, plus the HTTP ones every route test uses. */
import { deepStrictEqual, fail, match, ok } from "node:assert/strict";

export {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  notDeepStrictEqual as assertNotEquals,
  ok as assert,
} from "node:assert/strict";

/** Runs `fn`, asserts it throws an instance of `ErrorClass`, and returns the error. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any -- constructor signatures vary per error class
  ErrorClass: new (...args: any[]) => E,
): E {
  try {
    fn();
  } catch (error) {
    if (error instanceof ErrorClass) return error;
    throw error;
  }
  return fail(`expected ${ErrorClass.name} to be thrown`);
}

/** Awaits `fn`, asserts it rejects with an instance of `ErrorClass`, and returns the error. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any -- constructor signatures vary per error class
  ErrorClass: new (...args: any[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof ErrorClass) return error;
    throw error;
  }
  return fail(`expected ${ErrorClass.name} to be rejected`);
}

/**
 * Asserts an RFC 9457 refusal: status, media type, `code`, and the members every
 * problem carries. Returns the body for further checks.
 */
export async function assertProblem(
  res: Response,
  status: number,
  code: string,
): Promise<Record<string, unknown>> {
  deepStrictEqual(res.status, status, await res.clone().text());
  deepStrictEqual(res.headers.get("content-type"), "application/problem+json; charset=utf-8");
  const body = await res.json() as Record<string, unknown>;
  deepStrictEqual(body.code, code);
  deepStrictEqual(body.status, status);
  deepStrictEqual(typeof body.title, "string");
  deepStrictEqual(typeof body.detail, "string");
  deepStrictEqual(body.request_id, res.headers.get("x-request-id"));
  return body;
}

/** The headers every response carries, errors and CORS preflights included. */
const SECURITY_HEADERS: Readonly<Record<string, string | RegExp>> = {
  "strict-transport-security": "max-age=31536000; includeSubDomains",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "strict-origin-when-cross-origin",
  "permissions-policy": /camera=\(\), microphone=\(\), geolocation=\(\)/,
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
  "x-xss-protection": "1; mode=block",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

/** Asserts every security header, no `Server`/`X-Powered-By`, and a well-formed request id. */
export function assertSecurityHeaders(res: Response): void {
  for (const [name, expected] of Object.entries(SECURITY_HEADERS)) {
    const value = res.headers.get(name);
    ok(value !== null, `${name} missing on ${res.status}`);
    if (typeof expected === "string") deepStrictEqual(value, expected, name);
    else match(value, expected);
  }
  deepStrictEqual(res.headers.get("server"), null);
  deepStrictEqual(res.headers.get("x-powered-by"), null);
  match(res.headers.get("x-request-id") ?? "", /^[A-Za-z0-9._-]{1,128}$/);
}
