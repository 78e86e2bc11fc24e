import { createApp } from "../../routes/app.ts";
import { assert, assertEquals } from "../_assert.ts";
import { auditTypes, FakeClock, json, jsonInit, makeDeps, peer, randomUser } from "../_helpers.ts";

async function world() {
  const kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const deps = makeDeps({ kv, clock });
  const app = createApp(deps);
  return { kv, clock, deps, app, [Symbol.dispose]: () => kv.close() };
}

/** Strips the per-request members so two problem bodies can be compared. */
function comparable(body: Record<string, unknown>): Record<string, unknown> {
  const { request_id: _r, instance: _i, ...rest } = body;
  return rest;
}

Deno.test("failed logins add progressive delays, then lock the account", async (t) => {
  using w = await world();
  const user = randomUser();
  await w.app.request("/auth/register", jsonInit("POST", user));
  const wrong = jsonInit("POST", { email: user.email, password: "Wrong-Pass-99!" });
  const right = jsonInit("POST", { email: user.email, password: user.password });

  await t.step("the first failure is 401 and starts a 1 s delay", async () => {
    assertEquals((await w.app.request("/auth/login", wrong)).status, 401);
    const throttled = await w.app.request("/auth/login", right);
    assertEquals(throttled.status, 429);
    assertEquals((await json(throttled)).code, "login_throttled");
    assertEquals(throttled.headers.get("retry-after"), "1");
  });
  await t.step("the delay doubles: 2 s, 4 s, 8 s", async () => {
    for (const delay of [2, 4, 8]) {
      w.clock.advance(60_000);
      assertEquals((await w.app.request("/auth/login", wrong)).status, 401);
      const res = await w.app.request("/auth/login", wrong);
      assertEquals(res.status, 429);
      assertEquals(res.headers.get("retry-after"), String(delay));
      w.clock.advance(delay * 1000 - 1);
      assertEquals(
        (await w.app.request("/auth/login", wrong)).status,
        429,
        "still inside the window",
      );
    }
  });
  await t.step(
    "the 5th consecutive failure locks for 15 minutes, even for the right password",
    async () => {
      w.clock.advance(60_000);
      assertEquals((await w.app.request("/auth/login", wrong)).status, 401);
      const locked = await w.app.request("/auth/login", right);
      assertEquals(locked.status, 423);
      assertEquals((await json(locked)).code, "account_locked");
      assertEquals(locked.headers.get("retry-after"), "900");
      w.clock.advance(14 * 60_000);
      assertEquals((await w.app.request("/auth/login", right)).status, 423);
    },
  );
  await t.step("after the lock the right password works and resets the count", async () => {
    w.clock.advance(60_000 + 1);
    assertEquals((await w.app.request("/auth/login", right)).status, 200);
    assertEquals(
      (await w.app.request("/auth/login", right)).status,
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
  using w = await world();
  const known = randomUser();
  await w.app.request("/auth/register", jsonInit("POST", known));
  const run = async (email: string) => {
    const seen: { status: number; body: Record<string, unknown>; retry: string | null }[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await w.app.request(
        "/auth/login",
        jsonInit("POST", { email, password: "Wrong-Pass-99!" }),
      );
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
  using w = await world();
  const user = randomUser();
  await w.app.request("/auth/register", jsonInit("POST", user));
  const results = await Promise.all(
    Array.from(
      { length: 10 },
      () =>
        w.app.request(
          "/auth/login",
          jsonInit("POST", { email: user.email, password: "Wrong-Pass-99!" }),
        ),
    ),
  );
  const statuses = results.map((r) => r.status);
  // Only one attempt wins the reservation; the rest are throttled without a password check.
  assertEquals(statuses.filter((s) => s === 401).length, 1, statuses.join(","));
  assertEquals(statuses.filter((s) => s === 429).length, 9);
  await Promise.all(results.map((r) => r.body?.cancel()));
});

Deno.test("many failing accounts from one IP raise credential_stuffing_suspected", async () => {
  using w = await world();
  const ip = peer("198.51.100.77");
  for (let i = 0; i < 10; i++) {
    await w.app.request(
      "/auth/login",
      jsonInit("POST", { email: `victim${i}@example.com`, password: "Pw-12345!" }),
      ip,
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
