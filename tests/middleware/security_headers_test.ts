import { Hono } from "hono";
import type { AppEnv } from "../../middleware/app_env.ts";
import { securityHeaderList, securityHeaders } from "../../middleware/security_headers.ts";
import { assertEquals } from "../_helpers/assert.ts";

/** Every header name a response may carry besides the security headers. */
const ORDINARY = new Set(["content-type", "content-length", "cache-control"]);

function appWith(options: Parameters<typeof securityHeaders>[0] = {}): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .use(securityHeaders(options))
    .get("/health", (c) => c.json({ status: "ok" }))
    .get("/page", (c) => {
      c.header("Content-Security-Policy", "default-src 'none'; script-src 'nonce-abc'");
      return c.html("<p>page</p>");
    })
    .get("/leaky", () =>
      new Response("{}", {
        headers: {
          "Content-Type": "application/json",
          Server: "Deno",
          "X-Powered-By": "Hono",
        },
      }))
    .post("/auth/login", (c) => c.json({ ok: true }))
    .get("/api-keys", (c) => c.json([]))
    .get("/oauth2x", (c) => c.json({}));
}

/** The security headers of a response, names lower-cased, ordinary headers left out. */
function securityHeadersOf(res: Response): Record<string, string> {
  return Object.fromEntries([...res.headers].filter(([name]) => !ORDINARY.has(name)));
}

function expected(list: [string, string][]): Record<string, string> {
  return Object.fromEntries(list.map(([name, value]) => [name.toLowerCase(), value]));
}

Deno.test("securityHeaders sends exactly API.md's headers, no more", async () => {
  const res = await appWith().request("/health");
  assertEquals(securityHeadersOf(res), expected(securityHeaderList()));
  assertEquals(securityHeadersOf(res), {
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "x-xss-protection": "1; mode=block",
  });
  assertEquals(res.headers.get("content-type"), "application/json; charset=utf-8");
  assertEquals(res.headers.get("cache-control"), null);
});

Deno.test("X-XSS-Protection is configurable and omitted when empty", async () => {
  const custom = await appWith({ xssProtection: "0" }).request("/health");
  assertEquals(custom.headers.get("x-xss-protection"), "0");
  const omitted = await appWith({ xssProtection: "" }).request("/health");
  assertEquals(omitted.headers.get("x-xss-protection"), null);
  assertEquals(securityHeadersOf(omitted), expected(securityHeaderList("")));
});

Deno.test("a route's own CSP (an HTML nonce page) is kept", async () => {
  const res = await appWith().request("/page");
  assertEquals(
    res.headers.get("content-security-policy"),
    "default-src 'none'; script-src 'nonce-abc'",
  );
  assertEquals(res.headers.get("x-frame-options"), "DENY");
  assertEquals(res.headers.get("content-type"), "text/html; charset=UTF-8");
});

Deno.test("Server and X-Powered-By are removed; JSON is declared UTF-8", async () => {
  const res = await appWith().request("/leaky");
  assertEquals(res.headers.get("server"), null);
  assertEquals(res.headers.get("x-powered-by"), null);
  assertEquals(res.headers.get("content-type"), "application/json; charset=utf-8");
});

Deno.test("token and key routes are no-store, look-alike paths are not", async () => {
  const app = appWith();
  const login = await app.request("/auth/login", { method: "POST" });
  assertEquals(login.headers.get("cache-control"), "no-store");
  assertEquals((await app.request("/api-keys")).headers.get("cache-control"), "no-store");
  assertEquals((await app.request("/oauth2x")).headers.get("cache-control"), null);
  // A 404 under /auth is no-store too: the rule is by path, not by route.
  const missing = await app.request("/auth/nope");
  assertEquals(missing.status, 404);
  assertEquals(missing.headers.get("cache-control"), "no-store");
});
