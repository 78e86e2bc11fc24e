import { assertEquals, assertProblem, assertSecurityHeaders } from "../_helpers/assert.ts";
import { openWorld } from "../_helpers/world.ts";

Deno.test("GET /health answers 200 with every security header", async () => {
  await using w = await openWorld();
  const res = await w.app.request("/health");
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("content-type"), "application/json; charset=utf-8");
  assertEquals(await res.json(), { status: "ok" });
  assertSecurityHeaders(res);
});

Deno.test("GET /ready answers 200 while the store answers and 503 when it does not", async () => {
  const kv = await Deno.openKv(":memory:");
  await using w = await openWorld({ kv });
  assertEquals((await w.app.request("/ready")).status, 200);
  kv.close();
  await assertProblem(await w.app.request("/ready"), 503, "service_unavailable");
});
