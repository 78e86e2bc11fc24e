import { RateLimitedError } from "../../services/core/errors.ts";
import { login, randomUser, signUp } from "../_helpers/accounts.ts";
import { assert, assertEquals, assertMatch } from "../_helpers/assert.ts";
import { bearer, json, jsonInit, peer } from "../_helpers/http.ts";
import { auditTypes, FakeClock, openWorld } from "../_helpers/world.ts";

const LOGIN_LIMITED = { RATE_LIMIT_LOGIN: "5/minute" };

/** Credentials of an account that does not exist, so lockout stays out of the way. */
function probe(email: string) {
  return { email, password: "Wrong-Pass-99!" };
}

Deno.test("POST /auth/login: the 6th attempt in a minute from one IP is refused", async (t) => {
  await using w = await openWorld({ env: LOGIN_LIMITED });
  const { app, clock, kv } = w;
  const ip = { ip: "198.51.100.10" };
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) {
    // Different accounts, so the account lockout and per-account bucket stay out of it.
    const res = await login(app, probe(`probe${i}@example.com`), ip);
    statuses.push(res.status);
    await t.step(`attempt ${i + 1} carries X-RateLimit headers`, () => {
      assertEquals(res.headers.get("x-ratelimit-limit"), "5");
      assertEquals(res.headers.get("x-ratelimit-remaining"), String(4 - i));
      assertMatch(res.headers.get("x-ratelimit-reset") ?? "", /^\d{10}$/);
    });
  }
  assertEquals(statuses, [401, 401, 401, 401, 401]);
  await t.step("the 6th gets 429 rate_limited with Retry-After", async () => {
    const res = await login(app, probe("probe6@example.com"), ip);
    assertEquals(res.status, 429);
    assertEquals((await json(res)).code, "rate_limited");
    assertEquals(res.headers.get("retry-after"), "12");
    assertEquals(res.headers.get("x-ratelimit-remaining"), "0");
  });
  await t.step("another IP has its own budget", async () => {
    const res = await login(app, probe("probe7@example.com"), { ip: "198.51.100.11" });
    assertEquals(res.status, 401);
  });
  await t.step("one token comes back every 12 s", async () => {
    clock.advance(12_000);
    assertEquals((await login(app, probe("probe8@example.com"), ip)).status, 401);
    assertEquals((await login(app, probe("probe9@example.com"), ip)).status, 429);
  });
  await t.step("refusals are audited once per window, not once per request", async () => {
    for (let i = 0; i < 10; i++) await login(app, probe("x@example.com"), ip);
    const refusals = (await auditTypes(kv)).filter((type) => type === "rate_limit.exceeded");
    assert(refusals.length >= 1 && refusals.length <= 2, `${refusals.length} audit events`);
  });
});

Deno.test("a spoofed X-Forwarded-For does not reset the budget", async (t) => {
  using kv = await Deno.openKv(":memory:");
  await t.step("TRUST_PROXY=0 ignores the header", async () => {
    await using w = await openWorld({ kv, env: LOGIN_LIMITED });
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await login(w.app, probe(`spoof${i}@example.com`), {
        headers: { "x-forwarded-for": `10.0.0.${i}` },
        ip: "198.51.100.20",
      });
      statuses.push(res.status);
    }
    assertEquals(statuses.slice(5), [429, 429]);
  });
  await t.step("TRUST_PROXY=1 reads only the entry our proxy appended", async () => {
    await using w = await openWorld({ kv, env: { ...LOGIN_LIMITED, TRUST_PROXY: "1" } });
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      // The client forges the left part; the proxy (socket peer) appends the real address.
      const res = await login(w.app, probe(`proxied${i}@example.com`), {
        headers: { "x-forwarded-for": `10.9.9.${i}, 192.0.2.50` },
        ip: "127.0.0.1",
      });
      statuses.push(res.status);
    }
    assertEquals(statuses.slice(5), [429, 429]);
  });
});

Deno.test("the per-account login bucket holds across IPs", async () => {
  await using w = await openWorld({ env: LOGIN_LIMITED });
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await w.app.request(
      "/auth/register",
      jsonInit("POST", randomUser({ email: "target@example.com" })),
      peer(`203.0.113.${i + 1}`),
    );
    statuses.push(res.status);
  }
  assertEquals(statuses[0], 201);
  assertEquals(statuses.slice(1, 5), [409, 409, 409, 409]);
  assertEquals(statuses[5], 429);
});

Deno.test("authenticated and anonymous callers have separate budgets", async (t) => {
  await using w = await openWorld({
    env: { RATE_LIMIT_ANONYMOUS: "3/minute", RATE_LIMIT_AUTHENTICATED: "5/minute" },
  });
  const { app } = w;
  const s = await signUp(app);
  const ip = peer("198.51.100.30");
  await t.step("anonymous: 3 per minute per IP", async () => {
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await app.request("/users/me", {}, ip)).status);
    assertEquals(statuses, [401, 401, 401, 429]);
  });
  await t.step("a bad token counts as anonymous", async () => {
    const res = await app.request("/users/me", { headers: bearer("x.y.z") }, ip);
    assertEquals(res.status, 429);
  });
  await t.step("authenticated: 5 per minute per user, from the same IP", async () => {
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      const res = await app.request("/users/me", { headers: bearer(s.access) }, ip);
      statuses.push(res.status);
      if (i === 0) assertEquals(res.headers.get("x-ratelimit-limit"), "5");
    }
    assertEquals(statuses, [200, 200, 200, 200, 200, 429]);
  });
  await t.step("health and readiness probes are never limited", async () => {
    for (let i = 0; i < 10; i++) assertEquals((await app.request("/health", {}, ip)).status, 200);
  });
});

Deno.test("two app instances on one KV file share the budget", async () => {
  const dir = await Deno.makeTempDir();
  try {
    using kvA = await Deno.openKv(`${dir}/shared.kv`);
    using kvB = await Deno.openKv(`${dir}/shared.kv`);
    const clock = new FakeClock();
    await using a = await openWorld({ kv: kvA, clock, env: LOGIN_LIMITED });
    await using b = await openWorld({ kv: kvB, clock, env: LOGIN_LIMITED });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const { app } = i % 2 === 0 ? a : b;
      const res = await login(app, probe(`shared${i}@example.com`), { ip: "198.51.100.40" });
      statuses.push(res.status);
    }
    assertEquals(statuses, [401, 401, 401, 401, 401, 429]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parallel requests of one user within the limit are never refused for contention", async () => {
  await using w = await openWorld({ env: { RATE_LIMIT_AUTHENTICATED: "1000/minute" } });
  const { app } = w;
  const s = await signUp(app);
  const results = await Promise.all(
    Array.from({ length: 32 }, () => app.request("/users/me", { headers: bearer(s.access) })),
  );
  assertEquals(results.map((r) => r.status), Array(32).fill(200));
  await Promise.all(results.map((r) => r.body?.cancel()));
});

Deno.test("two app instances share the authenticated budget within the stated bound", async () => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const env = { RATE_LIMIT_AUTHENTICATED: "5/minute" };
  await using a = await openWorld({ kv, clock, env });
  await using b = await openWorld({ kv, clock, env });
  const s = await signUp(a.app);
  const me = (w: typeof a) => w.app.request("/users/me", { headers: bearer(s.access) });
  let admitted = 0;
  for (let i = 0; i < 20; i++) {
    const res = await me(i % 2 === 0 ? a : b);
    await res.body?.cancel();
    if (res.status === 200) admitted++;
  }
  // Each instance decides from memory between reconciles: at most one extra burst
  // (5 + 5 × 1.25 s / 60 s) on top of the exact budget of 5.
  assert(admitted >= 5 && admitted <= 10, `${admitted} admitted`);
  await a.services.localRates.reconcile();
  await b.services.localRates.reconcile();
  await a.services.localRates.reconcile();
  for (const w of [a, b]) {
    const res = await me(w);
    assertEquals(res.status, 429, "refused on both once reconciled");
    assertEquals((await json(res)).code, "rate_limited");
  }
});

Deno.test("uploads: the exact and the local bucket are spent together or not at all", async (t) => {
  await using w = await openWorld({
    env: { RATE_LIMIT_AUTHENTICATED: "5/minute", RATE_LIMIT_UPLOADS: "1/minute" },
  });
  const meta = { ip: "198.51.100.60", userAgent: "test", requestId: "r1" };
  const subject = (id: string) => ({ kind: "user" as const, id, userId: id });
  const { rates } = w.services;
  const attempt = async (tier: "uploads" | "general", id: string) => {
    try {
      return (await rates.checkRequest(tier, subject(id), meta))?.limit;
    } catch (error) {
      if (error instanceof RateLimitedError) return "refused";
      throw error;
    }
  };
  await t.step("an upload refused by its exact bucket gives the general token back", async () => {
    assertEquals(await attempt("uploads", "u1"), 1, "described by the tighter uploads bucket");
    assertEquals(await attempt("uploads", "u1"), "refused");
    const general = [];
    for (let i = 0; i < 5; i++) general.push(await attempt("general", "u1"));
    assertEquals(general, [5, 5, 5, 5, "refused"], "1 upload + 4 general = the 5 of the minute");
  });
  await t.step("an upload refused by the local bucket spends no upload token", async () => {
    for (let i = 0; i < 5; i++) assertEquals(await attempt("general", "u2"), 5);
    assertEquals(await attempt("uploads", "u2"), "refused");
    w.clock.advance(12_000);
    await w.services.localRates.reconcile();
    assertEquals(await attempt("uploads", "u2"), 1, "the uploads bucket was still full");
  });
});

Deno.test("RATE_LIMIT_ENABLED=false limits nothing and reconciles nothing", async () => {
  await using w = await openWorld({
    env: { RATE_LIMIT_ENABLED: "false", RATE_LIMIT_ANONYMOUS: "1/minute" },
  });
  for (let i = 0; i < 3; i++) {
    const res = await w.app.request("/users/me", {}, peer("198.51.100.70"));
    assertEquals(res.status, 401);
    assertEquals(res.headers.get("x-ratelimit-limit"), null);
  }
  await w.services.localRates.reconcile();
  assertEquals(w.services.localRates.size(), { buckets: 0, pending: 0 });
  assertEquals((await Array.fromAsync(w.kv.list({ prefix: ["rate_shared"] }))).length, 0);
});
