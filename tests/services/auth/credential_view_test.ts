import { createCredentialView } from "../../../services/auth/credential_view.ts";
import {
  createRevocationFeed,
  type RevocationFeed,
} from "../../../services/core/revocation_feed.ts";
import { assert, assertEquals } from "../../_helpers/assert.ts";
import { signUp } from "../../_helpers/accounts.ts";
import { bearer, jsonInit } from "../../_helpers/http.ts";
import { FakeClock, memoryLogger, openWorld, type World } from "../../_helpers/world.ts";
import { waitFor } from "../../_helpers/wait.ts";

/** A feed that is always fresh and never touches a store: the view's own rules under test. */
function freshFeed(): RevocationFeed & { revoke(kind: "user" | "session", id: string): void } {
  const listeners: Array<(e: { kind: "user" | "session"; id: string }) => void> = [];
  return {
    append: (op) => op,
    subscribe: (l) => void listeners.push(l),
    applyLocal: () => {},
    fresh: () => true,
    sync: () => Promise.resolve(),
    start: () => {},
    close: () => Promise.resolve(),
    seenCount: () => 0,
    revoke: (kind, id) => listeners.forEach((l) => l({ kind, id })),
  };
}

Deno.test("createCredentialView() holds good states within its bounds", async (t) => {
  await t.step("never more than maxEntries; the least recently used go first", () => {
    const view = createCredentialView(freshFeed(), { maxEntries: 3 });
    for (let i = 0; i < 10; i++) view.remember(`k${i}`, i, [`user:${i}`], view.generation());
    assertEquals(view.size(), 3);
    assertEquals(view.get("k0"), undefined);
    assertEquals(view.get("k9"), 9);
  });
  await t.step("a hit makes an entry the most recent; tags of evicted entries drop nothing", () => {
    const feed = freshFeed();
    const view = createCredentialView(feed, { maxEntries: 2 });
    view.remember("a", 1, ["user:u1"], view.generation());
    view.remember("b", 2, ["user:u2"], view.generation());
    assertEquals(view.get("a"), 1);
    view.remember("c", 3, ["user:u3"], view.generation());
    assertEquals([view.get("a"), view.get("b"), view.get("c")], [1, undefined, 3]);
    feed.revoke("user", "u2");
    assertEquals(view.size(), 2, "the evicted entry's tag index went with it");
  });
  await t.step("entries past their age are read again, and dropped as new ones come", () => {
    let ms = 0;
    const view = createCredentialView(freshFeed(), { maxAgeMs: 1_000, now: () => ms });
    for (let i = 0; i < 8; i++) view.remember(`old${i}`, i, [`user:o${i}`], view.generation());
    ms = 1_001;
    assertEquals(view.get("old0"), undefined, "an aged entry is not served");
    assertEquals(view.size(), 7);
    // Each new entry takes a few dead ones with it, without anyone reading them.
    view.remember("new0", 0, ["user:n0"], view.generation());
    view.remember("new1", 1, ["user:n1"], view.generation());
    assertEquals(view.size(), 2);
    assertEquals([view.get("new0"), view.get("new1")], [0, 1]);
  });
  await t.step("a revocation drops every entry with its tag", () => {
    const feed = freshFeed();
    const view = createCredentialView(feed);
    view.remember("a", 1, ["user:u1", "session:s1"], view.generation());
    view.remember("b", 2, ["user:u1", "session:s2"], view.generation());
    view.remember("c", 3, ["user:u2"], view.generation());
    feed.revoke("user", "u1");
    assertEquals([view.get("a"), view.get("b"), view.get("c")], [undefined, undefined, 3]);
  });
  await t.step("a state read before a revocation is not remembered after it", () => {
    const feed = freshFeed();
    const view = createCredentialView(feed);
    const before = view.generation();
    feed.revoke("session", "s9");
    view.remember("late", 1, ["session:s1"], before);
    assertEquals(view.get("late"), undefined);
  });
  await t.step("nothing is served from a stale feed", async () => {
    await using kv = await Deno.openKv(":memory:");
    const feed = createRevocationFeed({ kv, clock: new FakeClock(), logger: memoryLogger() });
    const view = createCredentialView(feed);
    view.remember("x", 1, [], view.generation());
    assertEquals(view.get("x"), undefined, "never synced: stale");
    await feed.sync();
    view.remember("x", 1, [], view.generation());
    assertEquals(view.get("x"), 1);
  });
});

/** Counts every read the app makes of the store. */
function countingKv(kv: Deno.Kv): { kv: Deno.Kv; reads: () => number; writes: () => number } {
  let reads = 0;
  let writes = 0;
  const proxy = new Proxy(kv, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (name === "get" || name === "getMany" || name === "list") reads++;
        if (name === "set" || name === "delete" || name === "atomic") writes++;
        return value.apply(target, args);
      };
    },
  });
  return { kv: proxy, reads: () => reads, writes: () => writes };
}

Deno.test("an authenticated request needs no store read once its token was checked (hot path)", async () => {
  await using raw = await Deno.openKv(":memory:");
  const counted = countingKv(raw);
  await using w = await openWorld({ kv: counted.kv, env: { RATE_LIMIT_ENABLED: "false" } });
  const s = await signUp(w.app);
  await w.services.feed.sync();
  await w.app.request("/users/me", { headers: bearer(s.access) });
  const before = counted.reads();
  for (let i = 0; i < 200; i++) {
    const res = await w.app.request("/users/me", { headers: bearer(s.access) });
    assertEquals(res.status, 200);
    await res.body?.cancel();
  }
  // The feed's own polls (one small read each) may fall inside the loop.
  const perRequest = (counted.reads() - before) / 200;
  assert(perRequest <= 0.05, `store reads per request: ${perRequest}`);
});

async function twoInstances(): Promise<{ a: World; b: World; close(): Promise<void> }> {
  const kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const a = await openWorld({ kv, clock });
  const b = await openWorld({ kv, clock });
  return {
    a,
    b,
    async close() {
      await a[Symbol.asyncDispose]();
      await b[Symbol.asyncDispose]();
      kv.close();
    },
  };
}

/** Waits until `b` refuses `access` (401) and returns how long that took. */
async function refusedWithin(b: World, access: string): Promise<number> {
  const started = performance.now();
  await waitFor("the second instance to refuse the token", async () => {
    const res = await b.app.request("/users/me", { headers: bearer(access) });
    await res.body?.cancel();
    return res.status === 401;
  }, { timeoutMs: 3000 });
  return performance.now() - started;
}

Deno.test("a revocation on one instance is enforced by another within 1 s, for every cause", async (t) => {
  const { a, b, close } = await twoInstances();
  try {
    const causes: Record<string, (s: Awaited<ReturnType<typeof signUp>>) => unknown> = {
      "logout": (s) => a.app.request("/auth/logout", { method: "POST", headers: bearer(s.access) }),
      "logout-all": (s) =>
        a.app.request("/auth/logout-all", { method: "POST", headers: bearer(s.access) }),
      "session delete": (s) =>
        a.app.request(`/auth/sessions/${s.sessionId}`, {
          method: "DELETE",
          headers: bearer(s.access),
        }),
      "refresh reuse": async (s) => {
        await a.app.request("/auth/refresh", jsonInit("POST", { refresh_token: s.refresh }));
        return a.app.request("/auth/refresh", jsonInit("POST", { refresh_token: s.refresh }));
      },
      "password change": (s) =>
        a.app.request(
          "/auth/password/change",
          jsonInit("POST", {
            current_password: s.user.password,
            new_password: "Brand-New-Pass-55!",
          }, bearer(s.access)),
        ),
      "role change": (s) => a.services.users.updateUser(s.id, (u) => ({ ...u, role: "moderator" })),
      "disable": (s) => a.services.users.updateUser(s.id, (u) => ({ ...u, disabled: true })),
    };
    for (const [cause, revoke] of Object.entries(causes)) {
      await t.step(cause, async () => {
        const s = await signUp(a.app);
        await b.services.feed.sync();
        // B checks the token once and then holds it in memory.
        assertEquals((await b.app.request("/users/me", { headers: bearer(s.access) })).status, 200);
        assertEquals((await b.app.request("/users/me", { headers: bearer(s.access) })).status, 200);
        await revoke(s);
        const ms = await refusedWithin(b, s.access);
        assert(ms < 1000, `${cause}: refused after ${Math.round(ms)} ms`);
      });
    }
    await t.step("API key revocation", async () => {
      const s = await signUp(a.app);
      const created = await a.app.request(
        "/api-keys",
        jsonInit("POST", { name: "k", scopes: ["profile:read"] }, bearer(s.access)),
      );
      const { id, key } = await created.json() as { id: string; key: string };
      await b.services.feed.sync();
      const use = () => b.app.request("/users/me", { headers: { "x-api-key": key } });
      assertEquals((await use()).status, 200);
      await a.app.request(`/api-keys/${id}`, { method: "DELETE", headers: bearer(s.access) });
      const started = performance.now();
      await waitFor("the key to be refused", async () => (await use()).status === 401, {
        timeoutMs: 3000,
      });
      assert(performance.now() - started < 1000);
    });
  } finally {
    await close();
  }
});

Deno.test("an unreadable feed falls back to the store, never to 'assume valid' (fail safe)", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const a = await openWorld({ kv, clock });
  // B's store refuses to show it the feed head: its view never becomes fresh.
  const blind = new Proxy(kv, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (name !== "get" || typeof value !== "function") {
        return typeof value === "function" ? value.bind(target) : value;
      }
      return (key: Deno.KvKey) => {
        if (key[0] === "revocations_head") return Promise.reject(new Error("feed unreadable"));
        return value.call(target, key);
      };
    },
  });
  const b = await openWorld({ kv: blind, clock });
  try {
    const s = await signUp(a.app);
    assertEquals((await b.app.request("/users/me", { headers: bearer(s.access) })).status, 200);
    await a.app.request("/auth/logout", { method: "POST", headers: bearer(s.access) });
    // Refused at once: with a stale feed every request reads the store.
    assertEquals((await b.app.request("/users/me", { headers: bearer(s.access) })).status, 401);
    assert(b.logger.lines.some((l) => l.includes("revocation feed unreadable")));
  } finally {
    await a[Symbol.asyncDispose]();
    await b[Symbol.asyncDispose]();
    kv.close();
  }
});
