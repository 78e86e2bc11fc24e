/**
 * Regression tests for the final review of this change: each names the weakness it pins.
 */
import { createDeviceTrust } from "../../services/auth/devices.ts";
import { assert, assertEquals, assertProblem } from "../_helpers/assert.ts";
import { login, signUp, tokenPair } from "../_helpers/accounts.ts";
import { bearer, json, jsonInit } from "../_helpers/http.ts";
import { FakeClock, openWorld } from "../_helpers/world.ts";

Deno.test("a device token survives a key rotation (device trust lost on rotation)", () => {
  const clock = new FakeClock();
  const old = new TextEncoder().encode("o".repeat(40));
  const fresh = new TextEncoder().encode("n".repeat(40));
  const before = createDeviceTrust({ clock, keys: [old] });
  const token = before.issue("a@example.com", null);
  const after = createDeviceTrust({ clock, keys: [fresh, old] });
  assert(after.verify(token, "a@example.com") !== null);
  assertEquals(after.verify(token, "b@example.com"), null);
  const names = after.cookieNames("a@example.com");
  assertEquals(names[1], before.cookieNames("a@example.com")[0], "the old cookie is still read");
  assert(names[0] !== names[1]);
});

Deno.test("an operator's block refuses a trusted device too (block bypass by device cookie)", async () => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  const deviceToken = String((await json(await login(w.app, s.user))).device_token);
  await w.services.lockout.lockFor(s.user.email, 60 * 60_000);
  const res = await w.app.request(
    "/auth/login",
    jsonInit("POST", { email: s.user.email, password: s.user.password, device_token: deviceToken }),
  );
  await assertProblem(res, 423, "account_locked");
  await w.services.lockout.unblock(s.user.email);
  assertEquals((await login(w.app, s.user)).status, 200);
});

Deno.test("rotating a key needs every scope it holds (narrow token rotates a wide key)", async () => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  const created = await json(
    await w.app.request(
      "/api-keys",
      jsonInit(
        "POST",
        { name: "wide", scopes: ["uploads:read", "profile:read"] },
        bearer(s.access),
      ),
    ),
  );
  const narrow = (await tokenPair(await login(w.app, s.user, { scope: "apikeys:manage" }))).access;
  const rotate = (access: string) =>
    w.app.request(`/api-keys/${created.id}/rotate`, jsonInit("POST", {}, bearer(access)));
  await assertProblem(await rotate(narrow), 403, "insufficient_scope");
  assertEquals((await rotate(s.access)).status, 201);
});

Deno.test("concurrent key creations cannot pass the cap together (key cap race)", async () => {
  await using w = await openWorld({ env: { MAX_API_KEYS_PER_USER: "2" } });
  const s = await signUp(w.app);
  const results = await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      w.app.request(
        "/api-keys",
        jsonInit("POST", { name: `k${i}`, scopes: ["profile:read"] }, bearer(s.access)),
      )),
  );
  for (const res of results) await res.body?.cancel();
  assert(results.filter((r) => r.status === 201).length <= 2);
  const list = await json(await w.app.request("/api-keys", { headers: bearer(s.access) }));
  assert((list as unknown as unknown[]).length <= 2);
});

Deno.test("unknown request methods share one metrics label (label explosion)", async () => {
  await using w = await openWorld({ env: { METRICS_TOKEN: "m".repeat(40) } });
  for (const method of ["ZZRANDOM1", "ZZRANDOM2"]) {
    const res = await w.app.request("/health", { method });
    await res.body?.cancel();
  }
  const text = await (await w.app.request("/metrics", { headers: bearer("m".repeat(40)) })).text();
  assert(!text.includes("ZZRANDOM"), "a raw method became a label");
  assert(text.includes('method="OTHER"'));
});
