import { z } from "zod";
import { validate } from "../../middleware/validate.ts";
import { assert, assertEquals, assertMatch } from "../_assert.ts";
import { assertProblem, json, makeApp, makeDeps, peer } from "../_helpers.ts";
import { createApp } from "../../routes/app.ts";

const SECURITY_HEADERS: Record<string, string | RegExp> = {
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

function assertSecurityHeaders(res: Response): void {
  for (const [name, expected] of Object.entries(SECURITY_HEADERS)) {
    const value = res.headers.get(name);
    assert(value !== null, `${name} missing on ${res.status}`);
    if (typeof expected === "string") assertEquals(value, expected, name);
    else assertMatch(value, expected);
  }
  assertEquals(res.headers.get("server"), null);
  assertEquals(res.headers.get("x-powered-by"), null);
  assertMatch(res.headers.get("x-request-id") ?? "", /^[A-Za-z0-9._-]{1,128}$/);
}

/** An app with test-only routes that exercise validation and failures. */
function appWithProbes(kv: Deno.Kv, env: Record<string, string> = {}) {
  const deps = makeDeps({ kv, env });
  const app = createApp(deps);
  const Body = z.strictObject({ name: z.string().min(1).max(10) });
  app.post("/probe/echo", validate("json", Body), (c) => c.json(c.req.valid("json")));
  app.get("/probe/boom", () => {
    throw new Error("secret internal detail at /srv/app/services/x.ts");
  });
  return { app, deps };
}

Deno.test("GET /health answers 200 with every security header", async () => {
  using kv = await Deno.openKv(":memory:");
  const res = await makeApp({ kv }).request("/health");
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("content-type"), "application/json; charset=utf-8");
  assertEquals(await res.json(), { status: "ok" });
  assertSecurityHeaders(res);
});

Deno.test("GET /ready answers 200 while the store answers and 503 when it does not", async () => {
  const kv = await Deno.openKv(":memory:");
  const app = makeApp({ kv });
  assertEquals((await app.request("/ready")).status, 200);
  kv.close();
  await assertProblem(await app.request("/ready"), 503, "service_unavailable");
});

Deno.test("errors are problem+json with security headers and no internals", async (t) => {
  using kv = await Deno.openKv(":memory:");
  const { app, deps } = appWithProbes(kv);
  await t.step("404 for an unknown route", async () => {
    const res = await app.request("/nope/../../etc/passwd");
    await assertProblem(res, 404, "not_found");
    assertSecurityHeaders(res);
  });
  await t.step("413 for an oversized body with Content-Length", async () => {
    const res = await app.request("/probe/echo", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "x".repeat(70_000) }),
    });
    await assertProblem(res, 413, "payload_too_large");
    assertSecurityHeaders(res);
  });
  await t.step("413 for an oversized chunked body without Content-Length", async () => {
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(16 * 1024).fill(0x20));
        if (pulled > 1000) controller.close();
      },
    });
    const res = await app.request("/probe/echo", {
      method: "POST",
      headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
      body: stream,
    });
    await assertProblem(res, 413, "payload_too_large");
    assert(pulled < 10, `read ${pulled} chunks; must stop right after the limit`);
  });
  await t.step("422 with field errors, never the raw zod output", async () => {
    const res = await app.request("/probe/echo", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "", extra: "<script>" }),
    });
    const body = await assertProblem(res, 422, "validation_failed");
    const errors = body.errors as { path: string; message: string }[];
    assert(errors.some((e) => e.path === "name"));
    assert(errors.some((e) => e.message.includes("extra")), "unknown fields are rejected");
    assertSecurityHeaders(res);
  });
  await t.step("400 malformed_json", async () => {
    const res = await app.request("/probe/echo", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"name": "a",',
    });
    await assertProblem(res, 400, "malformed_json");
  });
  await t.step("415 for a non-JSON body on a JSON route", async () => {
    const res = await app.request("/probe/echo", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: '{"name":"a"}',
    });
    await assertProblem(res, 415, "unsupported_media_type");
  });
  await t.step("500 hides the error and logs it once with the request id", async () => {
    const res = await app.request("/probe/boom", { headers: { "x-request-id": "trace-500" } });
    const body = await assertProblem(res, 500, "internal");
    assertSecurityHeaders(res);
    const text = JSON.stringify(body);
    for (const leak of ["secret internal", "/srv/", "services/", "Error", "at "]) {
      assert(!text.includes(leak), `500 body leaks ${leak}`);
    }
    const logged = deps.logger.lines.filter((l) => l.includes("unhandled error"));
    assertEquals(logged.length, 1);
    assert(logged[0]?.includes("trace-500"));
  });
  await t.step("the valid request passes", async () => {
    const res = await app.request("/probe/echo", {
      method: "POST",
      headers: { "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify({ name: "ok" }),
    });
    assertEquals(res.status, 200);
    assertEquals(await res.json(), { name: "ok" });
  });
});

Deno.test("X-Request-ID is reused only when well-formed", async (t) => {
  using kv = await Deno.openKv(":memory:");
  const app = makeApp({ kv });
  await t.step("a valid id is echoed", async () => {
    const res = await app.request("/health", { headers: { "x-request-id": "abc.DEF_123-x" } });
    assertEquals(res.headers.get("x-request-id"), "abc.DEF_123-x");
  });
  const bad = ["a b", "x".repeat(129), "x".repeat(500), "id;drop", "<script>", "é"];
  for (const id of bad) {
    await t.step(`replaced: ${JSON.stringify(id.slice(0, 20))}`, async () => {
      const res = await app.request("/health", { headers: { "x-request-id": id } });
      const echoed = res.headers.get("x-request-id") ?? "";
      assert(echoed !== id);
      assertMatch(echoed, /^[0-9a-f]{8}-[0-9a-z]{6,}$/);
    });
  }
  await t.step("CRLF cannot reach the response headers", async () => {
    // Headers cannot carry raw CRLF through fetch, so build the raw value the server would see.
    const req = new Request("http://localhost/health");
    req.headers.set("x-request-id", "abc%0d%0aSet-Cookie:%20x=1");
    const res = await app.request(req);
    assertEquals(res.headers.get("set-cookie"), null);
    assertMatch(res.headers.get("x-request-id") ?? "", /^[0-9a-f]{8}-[0-9a-z]{6,}$/);
  });
});

Deno.test("CORS follows the configured origins exactly", async (t) => {
  using kv = await Deno.openKv(":memory:");
  const app = makeApp({ kv });
  const get = (origin: string) => app.request("/health", { headers: { origin } });
  const preflight = (origin: string) =>
    app.request("/health", {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type",
      },
    });
  await t.step("an allowed origin is echoed with credentials", async () => {
    const res = await get("https://app.example.com");
    assertEquals(res.headers.get("access-control-allow-origin"), "https://app.example.com");
    assertEquals(res.headers.get("access-control-allow-credentials"), "true");
    assertMatch(res.headers.get("access-control-expose-headers") ?? "", /X-RateLimit-Remaining/);
    assertMatch(res.headers.get("vary") ?? "", /Origin/);
  });
  await t.step("a wildcard label matches one label only", async () => {
    const one = await get("https://tenant.example.org");
    assertEquals(one.headers.get("access-control-allow-origin"), "https://tenant.example.org");
    for (
      const origin of [
        "https://a.b.example.org",
        "https://example.org",
        "http://tenant.example.org",
      ]
    ) {
      assertEquals((await get(origin)).headers.get("access-control-allow-origin"), null, origin);
    }
  });
  const refused = [
    "null",
    "https://evil.com",
    "https://app.example.com.evil.com",
    "https://allowed.example.evil.com",
    "https://evilapp.example.com",
    "http://app.example.com",
    "https://app.example.com:8443",
    "https://app.example.com/",
    "https://user@app.example.com",
    "https://tenant.example.org.evil.com",
    "https://evil.com#.example.org",
  ];
  for (const origin of refused) {
    await t.step(`refused without reflection: ${origin}`, async () => {
      for (const res of [await get(origin), await preflight(origin)]) {
        assertEquals(res.headers.get("access-control-allow-origin"), null);
        assertSecurityHeaders(res);
      }
    });
  }
  await t.step("preflight carries methods, headers and max-age", async () => {
    const res = await preflight("https://app.example.com");
    assertEquals(res.status, 204);
    assertEquals(res.headers.get("access-control-allow-origin"), "https://app.example.com");
    assertEquals(res.headers.get("access-control-allow-methods"), "GET,POST,PUT,PATCH,DELETE");
    assertEquals(
      res.headers.get("access-control-allow-headers"),
      "Authorization,Content-Type,X-API-Key,X-Request-ID,X-CSRF-Token",
    );
    assertEquals(res.headers.get("access-control-max-age"), "86400");
    assertSecurityHeaders(res);
  });
  await t.step("errors carry CORS headers too", async () => {
    const res = await app.request("/nope", { headers: { origin: "https://app.example.com" } });
    assertEquals(res.status, 404);
    assertEquals(res.headers.get("access-control-allow-origin"), "https://app.example.com");
  });
});

Deno.test("GET /openapi.json documents the routes and /docs is nonce-protected", async (t) => {
  using kv = await Deno.openKv(":memory:");
  await t.step("development serves both", async () => {
    const app = makeApp({ kv });
    const doc = await json(await app.request("/openapi.json"));
    assertEquals(doc.openapi, "3.1.0");
    assert("/health" in (doc.paths as Record<string, unknown>));
    const res = await app.request("/docs");
    assertEquals(res.status, 200);
    const csp = res.headers.get("content-security-policy") ?? "";
    const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
    assert(nonce !== undefined && !csp.includes("unsafe-inline"));
    const html = await res.text();
    assert(html.includes(`<script nonce="${nonce}">`));
  });
  await t.step("production hides /docs unless enabled", async () => {
    const prod = {
      APP_ENV: "production",
      CORS_ORIGINS: "https://app.example.com",
    };
    assertEquals((await makeApp({ kv, env: prod }).request("/docs")).status, 404);
    const enabled = makeApp({ kv, env: { ...prod, DOCS_ENABLED: "true" } });
    assertEquals((await enabled.request("/docs")).status, 200);
  });
});

Deno.test("the access log has one line per request and no secrets", async () => {
  using kv = await Deno.openKv(":memory:");
  const deps = makeDeps({ kv });
  const app = createApp(deps);
  const res = await app.request("/health?token=s3cr3t-query&password=hunter2", {
    headers: { authorization: "Bearer s3cr3t-bearer", cookie: "sid=s3cr3t-cookie" },
  }, peer("198.51.100.4"));
  const lines = deps.logger.lines.filter((l) => l.includes('"msg":"request"'));
  assertEquals(lines.length, 1);
  const line = JSON.parse(lines[0] ?? "{}") as Record<string, unknown>;
  assertEquals(line.path, "/health");
  assertEquals(line.status, res.status);
  assertEquals(line.ip, "198.51.100.4");
  assertEquals(typeof line.duration_ms, "number");
  for (const secret of ["s3cr3t", "hunter2"]) assert(!lines[0]?.includes(secret));
});
