/** The two cross-cutting layers (`edge.ts`, `guard.ts`) as the app mounts them. */
import { signUp } from "../_helpers/accounts.ts";
import { assert, assertEquals, assertSecurityHeaders } from "../_helpers/assert.ts";
import { bearer, json, peer } from "../_helpers/http.ts";
import { openWorld } from "../_helpers/world.ts";

Deno.test("createApp() mounts exactly two cross-cutting layers, edge then guard", async () => {
  // Regression guard for the middleware floor: each app-wide async layer costs
  // every request, /health included (issue #15).
  await using w = await openWorld();
  const layers = w.app.routes.filter((r) => r.method === "ALL" && r.path === "/*");
  assertEquals(layers.map((r) => r.handler.name), ["edge", "guard"]);
});

Deno.test("guard: probes without a credential skip the limiter, the rest are charged", async (t) => {
  await using w = await openWorld({ env: { RATE_LIMIT_ANONYMOUS: "2/minute" } });
  const { app } = w;
  await t.step(
    "GET /health answers 200 far past the anonymous budget, without X-RateLimit",
    async () => {
      for (let i = 0; i < 5; i++) {
        const res = await app.request("/health", {}, peer("198.51.100.20"));
        assertEquals(res.status, 200);
        assertEquals(res.headers.get("x-ratelimit-limit"), null);
        assertSecurityHeaders(res);
        await res.body?.cancel();
      }
    },
  );
  await t.step("an anonymous general route is charged and refused past the budget", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await app.request("/openapi.json", {}, peer("198.51.100.21"));
      statuses.push(res.status);
      if (res.status === 200) assertEquals(res.headers.get("x-ratelimit-limit"), "2");
      else assertSecurityHeaders(res);
      await res.body?.cancel();
    }
    assert(statuses.includes(429), `statuses ${statuses}`);
  });
});

Deno.test("guard: a credential on a probe is still verified (a bad one is remembered, not fatal)", async () => {
  await using w = await openWorld();
  const res = await w.app.request("/health", { headers: bearer("not.a.jwt") }, peer());
  assertEquals(res.status, 200);
  assertEquals((await json(res)).status, "ok");
});

Deno.test("guard: an authenticated request carries its user's X-RateLimit headers", async () => {
  await using w = await openWorld({ env: { RATE_LIMIT_AUTHENTICATED: "7/minute" } });
  const { access } = await signUp(w.app);
  const res = await w.app.request("/users/me", { headers: bearer(access) }, peer());
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("x-ratelimit-limit"), "7");
  assertSecurityHeaders(res);
  await res.body?.cancel();
});
