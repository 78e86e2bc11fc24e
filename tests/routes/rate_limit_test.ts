import { createApp } from "../../routes/app.ts";
import { assert, assertEquals, assertMatch } from "../_assert.ts";
import {
  auditTypes,
  bearer,
  FakeClock,
  json,
  jsonInit,
  makeDeps,
  peer,
  randomUser,
  signUp,
} from "../_helpers.ts";

const LOGIN_LIMITED = { RATE_LIMIT_LOGIN: "5/minute" };

function login(email: string, password = "Wrong-Pass-99!") {
  return jsonInit("POST", { email, password });
}

Deno.test("POST /auth/login: the 6th attempt in a minute from one IP is refused", async (t) => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const deps = makeDeps({ kv, clock, env: LOGIN_LIMITED });
  const app = createApp(deps);
  const ip = peer("198.51.100.10");
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) {
    // Different accounts, so the account lockout and per-account bucket stay out of it.
    const res = await app.request("/auth/login", login(`probe${i}@example.com`), ip);
    statuses.push(res.status);
    await t.step(`attempt ${i + 1} carries X-RateLimit headers`, () => {
      assertEquals(res.headers.get("x-ratelimit-limit"), "5");
      assertEquals(res.headers.get("x-ratelimit-remaining"), String(4 - i));
      assertMatch(res.headers.get("x-ratelimit-reset") ?? "", /^\d{10}$/);
    });
  }
  assertEquals(statuses, [401, 401, 401, 401, 401]);
  await t.step("the 6th gets 429 rate_limited with Retry-After", async () => {
    const res = await app.request("/auth/login", login("probe6@example.com"), ip);
    assertEquals(res.status, 429);
    assertEquals((await json(res)).code, "rate_limited");
    assertEquals(res.headers.get("retry-after"), "12");
    assertEquals(res.headers.get("x-ratelimit-remaining"), "0");
  });
  await t.step("another IP has its own budget", async () => {
    const res = await app.request(
      "/auth/login",
      login("probe7@example.com"),
      peer("198.51.100.11"),
    );
    assertEquals(res.status, 401);
  });
  await t.step("one token comes back every 12 s", async () => {
    clock.advance(12_000);
    assertEquals((await app.request("/auth/login", login("probe8@example.com"), ip)).status, 401);
    assertEquals((await app.request("/auth/login", login("probe9@example.com"), ip)).status, 429);
  });
  await t.step("refusals are audited once per window, not once per request", async () => {
    for (let i = 0; i < 10; i++) await app.request("/auth/login", login("x@example.com"), ip);
    const refusals = (await auditTypes(kv)).filter((type) => type === "rate_limit.exceeded");
    assert(refusals.length >= 1 && refusals.length <= 2, `${refusals.length} audit events`);
  });
});

Deno.test("a spoofed X-Forwarded-For does not reset the budget", async (t) => {
  using kv = await Deno.openKv(":memory:");
  await t.step("TRUST_PROXY=0 ignores the header", async () => {
    const app = createApp(makeDeps({ kv, env: LOGIN_LIMITED }));
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await app.request("/auth/login", {
        ...login(`spoof${i}@example.com`),
        headers: { "content-type": "application/json", "x-forwarded-for": `10.0.0.${i}` },
      }, peer("198.51.100.20"));
      statuses.push(res.status);
    }
    assertEquals(statuses.slice(5), [429, 429]);
  });
  await t.step("TRUST_PROXY=1 reads only the entry our proxy appended", async () => {
    const app = createApp(makeDeps({ kv, env: { ...LOGIN_LIMITED, TRUST_PROXY: "1" } }));
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      // The client forges the left part; the proxy (socket peer) appends the real address.
      const res = await app.request("/auth/login", {
        ...login(`proxied${i}@example.com`),
        headers: {
          "content-type": "application/json",
          "x-forwarded-for": `10.9.9.${i}, 192.0.2.50`,
        },
      }, peer("127.0.0.1"));
      statuses.push(res.status);
    }
    assertEquals(statuses.slice(5), [429, 429]);
  });
});

Deno.test("the per-account login bucket holds across IPs", async () => {
  using kv = await Deno.openKv(":memory:");
  const app = createApp(makeDeps({ kv, env: LOGIN_LIMITED }));
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await app.request(
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
  using kv = await Deno.openKv(":memory:");
  const app = createApp(makeDeps({
    kv,
    env: { RATE_LIMIT_ANONYMOUS: "3/minute", RATE_LIMIT_AUTHENTICATED: "5/minute" },
  }));
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
    const a = createApp(makeDeps({ kv: kvA, clock, env: LOGIN_LIMITED }));
    const b = createApp(makeDeps({ kv: kvB, clock, env: LOGIN_LIMITED }));
    const ip = peer("198.51.100.40");
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const app = i % 2 === 0 ? a : b;
      statuses.push((await app.request("/auth/login", login(`shared${i}@example.com`), ip)).status);
    }
    assertEquals(statuses, [401, 401, 401, 401, 401, 429]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parallel requests of one user within the limit are never refused for contention", async () => {
  using kv = await Deno.openKv(":memory:");
  const app = createApp(makeDeps({ kv, env: { RATE_LIMIT_AUTHENTICATED: "1000/minute" } }));
  const s = await signUp(app);
  const results = await Promise.all(
    Array.from({ length: 32 }, () => app.request("/users/me", { headers: bearer(s.access) })),
  );
  assertEquals(results.map((r) => r.status), Array(32).fill(200));
  await Promise.all(results.map((r) => r.body?.cancel()));
});
