import { login, randomUser } from "../_helpers/accounts.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { json, jsonInit } from "../_helpers/http.ts";
import { auditTypes, openWorld } from "../_helpers/world.ts";

/** Strips the per-request members so two problem bodies can be compared. */
function comparable(body: Record<string, unknown>): Record<string, unknown> {
  const { request_id: _r, instance: _i, ...rest } = body;
  return rest;
}

Deno.test("failed logins add progressive delays, then lock the account", async (t) => {
  await using w = await openWorld();
  const user = randomUser();
  await w.app.request("/auth/register", jsonInit("POST", user));
  const wrong = { email: user.email, password: "Wrong-Pass-99!" };

  await t.step("the first failure is 401 and starts a 1 s delay", async () => {
    assertEquals((await login(w.app, wrong)).status, 401);
    const throttled = await login(w.app, user);
    assertEquals(throttled.status, 429);
    assertEquals((await json(throttled)).code, "login_throttled");
    assertEquals(throttled.headers.get("retry-after"), "1");
  });
  await t.step("the delay doubles: 2 s, 4 s, 8 s", async () => {
    for (const delay of [2, 4, 8]) {
      w.clock.advance(60_000);
      assertEquals((await login(w.app, wrong)).status, 401);
      const res = await login(w.app, wrong);
      assertEquals(res.status, 429);
      assertEquals(res.headers.get("retry-after"), String(delay));
      w.clock.advance(delay * 1000 - 1);
      assertEquals(
        (await login(w.app, wrong)).status,
        429,
        "still inside the window",
      );
    }
  });
  await t.step(
    "the 5th consecutive failure locks for 15 minutes, even for the right password",
    async () => {
      w.clock.advance(60_000);
      assertEquals((await login(w.app, wrong)).status, 401);
      const locked = await login(w.app, user);
      assertEquals(locked.status, 423);
      assertEquals((await json(locked)).code, "account_locked");
      assertEquals(locked.headers.get("retry-after"), "900");
      w.clock.advance(14 * 60_000);
      assertEquals((await login(w.app, user)).status, 423);
    },
  );
  await t.step("after the lock the right password works and resets the count", async () => {
    w.clock.advance(60_000 + 1);
    assertEquals((await login(w.app, user)).status, 200);
    assertEquals(
      (await login(w.app, user)).status,
      200,
      "no delay after a success",
    );
  });
  await t.step("lockouts and throttles are audited", async () => {
    const types = await auditTypes(w.kv);
    assert(types.includes("auth.account_locked"));
    assert(types.includes("auth.login_throttled"));
  });
});

Deno.test("lockout treats unknown emails exactly like known ones", async () => {
  await using w = await openWorld();
  const known = randomUser();
  await w.app.request("/auth/register", jsonInit("POST", known));
  const run = async (email: string) => {
    const seen: { status: number; body: Record<string, unknown>; retry: string | null }[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await login(w.app, { email, password: "Wrong-Pass-99!" });
      seen.push({
        status: res.status,
        body: comparable(await json(res)),
        retry: res.headers.get("retry-after"),
      });
      w.clock.advance(20_000);
    }
    return seen;
  };
  const knownRun = await run(known.email);
  // Reset the clock's effect: the unknown run starts in the same relative state.
  const unknownRun = await run("ghost@example.com");
  assertEquals(knownRun.map((s) => s.status), [401, 401, 401, 401, 401, 423]);
  assertEquals(unknownRun, knownRun);
});

Deno.test("concurrent wrong guesses cannot outrun the delay", async () => {
  await using w = await openWorld();
  const user = randomUser();
  await w.app.request("/auth/register", jsonInit("POST", user));
  const results = await Promise.all(
    Array.from(
      { length: 10 },
      () => login(w.app, { email: user.email, password: "Wrong-Pass-99!" }),
    ),
  );
  const statuses = results.map((r) => r.status);
  // Only one attempt wins the reservation; the rest are throttled without a password check.
  assertEquals(statuses.filter((s) => s === 401).length, 1, statuses.join(","));
  assertEquals(statuses.filter((s) => s === 429).length, 9);
  await Promise.all(results.map((r) => r.body?.cancel()));
});

Deno.test("many failing accounts from one IP raise credential_stuffing_suspected", async () => {
  await using w = await openWorld();
  for (let i = 0; i < 10; i++) {
    await login(
      w.app,
      { email: `victim${i}@example.com`, password: "Pw-12345!" },
      { ip: "198.51.100.77" },
    );
  }
  const types = await auditTypes(w.kv);
  assertEquals(types.filter((t) => t === "credential_stuffing_suspected").length, 1);
  const events: Record<string, unknown>[] = [];
  for await (const e of w.kv.list<Record<string, unknown>>({ prefix: ["audit"] })) {
    events.push(e.value);
  }
  assert(!JSON.stringify(events).includes("victim3@example.com"), "accounts are stored as digests");
});
