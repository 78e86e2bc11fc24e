import { assertEquals, assertMatch, assertSecurityHeaders } from "../_helpers/assert.ts";
import { openWorld } from "../_helpers/world.ts";

Deno.test("CORS follows the configured origins exactly", async (t) => {
  await using w = await openWorld();
  const { app } = w;
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
