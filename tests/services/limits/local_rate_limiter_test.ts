import { assert, assertEquals, assertRejects } from "../../_helpers/assert.ts";
import { FakeClock, memoryLogger } from "../../_helpers/world.ts";
import {
  createLocalRateLimiter,
  type LocalRateLimiter,
  type LocalRateLimiterDeps,
  MAX_LAG_MS,
  SYNC_INTERVAL_MS,
} from "../../../services/limits/local_rate_limiter.ts";
import type { BucketId, RateCheck, RateLimit } from "../../../services/limits/rate_limiter.ts";

const TEN_PER_MINUTE: RateLimit = { limit: 10, windowMs: 60_000, burst: 10 };
const USER: BucketId = { name: "user", key: "u1" };

function check(id: BucketId = USER, rule: RateLimit = TEN_PER_MINUTE): RateCheck {
  return { id, rule };
}

/** A store whose reads and writes are counted, and which fails every operation while `failing`. */
function instrumented(kv: Deno.Kv) {
  const counts = { reads: 0, writes: 0 };
  const state = { failing: false };
  const fail = () => {
    if (state.failing) throw new Deno.errors.ConnectionRefused("store unreachable (test)");
  };
  const proxy = new Proxy(kv, {
    get(target, name) {
      const value = Reflect.get(target, name, target);
      if (typeof value !== "function") return value;
      if (name === "get" || name === "getMany" || name === "list") {
        return (...args: unknown[]) => {
          counts.reads++;
          fail();
          return value.apply(target, args);
        };
      }
      if (name === "atomic" || name === "set" || name === "delete") {
        return (...args: unknown[]) => {
          counts.writes++;
          fail();
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
  return { kv: proxy, counts, state };
}

function limiterOn(
  kv: Deno.Kv,
  clock: FakeClock,
  extra: Partial<LocalRateLimiterDeps> = {},
): LocalRateLimiter {
  return createLocalRateLimiter({
    kv,
    clock,
    logger: memoryLogger(),
    rules: [TEN_PER_MINUTE],
    ...extra,
  });
}

async function takeTimes(limiter: LocalRateLimiter, times: number, id = USER): Promise<number> {
  let admitted = 0;
  for (let i = 0; i < times; i++) if ((await limiter.take(check(id))).decision.allowed) admitted++;
  return admitted;
}

Deno.test("take(): the token-bucket rule and decision shape of the exact limiter", async (t) => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const limiter = limiterOn(kv, clock);
  const rule: RateLimit = { limit: 5, windowMs: 60_000, burst: 5 };
  await t.step("5/minute: five allowed, remaining counting down", async () => {
    for (let i = 0; i < 5; i++) {
      const { decision } = await limiter.take(check(USER, rule));
      assertEquals([decision.allowed, decision.remaining, decision.limit], [true, 4 - i, 5]);
      assertEquals(decision.retryAfterSeconds, 0);
    }
  });
  await t.step(
    "the 6th is refused with Retry-After 12 s and the reset of a full bucket",
    async () => {
      const { decision } = await limiter.take(check(USER, rule));
      assertEquals([decision.allowed, decision.remaining, decision.retryAfterSeconds], [
        false,
        0,
        12,
      ]);
      assertEquals(decision.resetAt.getTime(), clock.now().getTime() + 60_000);
      assertEquals(decision.bucket, USER);
      assertEquals(decision.contended, false);
    },
  );
  await t.step("one token comes back every 12 s", async () => {
    clock.advance(12_000);
    await limiter.reconcile();
    assertEquals((await limiter.take(check(USER, rule))).decision.allowed, true);
    assertEquals((await limiter.take(check(USER, rule))).decision.allowed, false);
  });
  await t.step("an over-long client key is bounded like the exact limiter's", async () => {
    const { decision } = await limiter.take(check({ name: "anonymous_ip", key: "x".repeat(300) }));
    assert(decision.bucket.key.startsWith("sha256:"));
  });
});

Deno.test("take(): warm decisions touch the store not at all; reconcile publishes with one commit", async () => {
  using raw = await Deno.openKv(":memory:");
  const { kv, counts } = instrumented(raw);
  const clock = new FakeClock();
  const limiter = limiterOn(kv, clock, { rules: [{ limit: 1000, windowMs: 60_000, burst: 1000 }] });
  const rule: RateLimit = { limit: 1000, windowMs: 60_000, burst: 1000 };
  await limiter.take(check(USER, rule));
  assertEquals(counts, { reads: 1, writes: 0 }, "a cold bucket is read once");
  for (let i = 0; i < 200; i++) {
    assert((await limiter.take(check(USER, rule))).decision.allowed);
    if (i % 50 === 0) clock.advance(100);
  }
  assertEquals(counts, { reads: 1, writes: 0 }, "200 warm decisions: no read, no write");
  await limiter.reconcile();
  assertEquals(counts.writes, 1, "one commit publishes all of them");
  const shared = [];
  for await (const e of raw.list<Deno.KvU64>({ prefix: ["rate_shared"] })) shared.push(e.value);
  assertEquals(shared.map((v) => v.value), [201n]);
});

/**
 * Two instances over one store hammer one bucket; returns what they admitted together.
 * Every 50 ms (fake) each tries `perStep` requests; each reconciles every T, offset by half.
 */
async function hammer(a: LocalRateLimiter, b: LocalRateLimiter, clock: FakeClock, ms: number) {
  let admitted = 0;
  for (let t = 0; t < ms; t += 50) {
    admitted += await takeTimes(a, 3) + await takeTimes(b, 3);
    if (t % SYNC_INTERVAL_MS === 0) await a.reconcile();
    if ((t + SYNC_INTERVAL_MS / 2) % SYNC_INTERVAL_MS === 0) await b.reconcile();
    clock.advance(50);
  }
  return admitted;
}

/** The module's bound for N instances: (N − 1) × (burst + limit × (T + L) / window). */
function extraBound(rule: RateLimit, instances: number): number {
  return (instances - 1) *
    (rule.burst + rule.limit * (SYNC_INTERVAL_MS + MAX_LAG_MS) / rule.windowMs);
}

Deno.test("two instances on one store admit at most the exact budget plus the stated bound", async (t) => {
  for (const seconds of [2, 30, 120]) {
    await t.step(`hammered from both for ${seconds} s`, async () => {
      using kv = await Deno.openKv(":memory:");
      const clock = new FakeClock();
      const a = limiterOn(kv, clock);
      const b = limiterOn(kv, clock);
      const admitted = await hammer(a, b, clock, seconds * 1000);
      const rule = TEN_PER_MINUTE;
      const exact = rule.burst + rule.limit * seconds / 60;
      assert(
        admitted <= exact + extraBound(rule, 2),
        `${admitted} admitted; exact ${exact}, bound +${extraBound(rule, 2)}`,
      );
      // Not a vacuous pass: both instances did admit, more than one bucket's share each.
      assert(admitted >= exact, `${admitted} admitted, fewer than the exact ${exact}`);
      await a.reconcile();
      await b.reconcile();
      assertEquals((await a.take(check())).decision.allowed, false, "A refuses once reconciled");
      assertEquals((await b.take(check())).decision.allowed, false, "B refuses once reconciled");
    });
  }
  await t.step("two handles of one KV file (as two processes share it)", async () => {
    const dir = await Deno.makeTempDir();
    try {
      using kvA = await Deno.openKv(`${dir}/shared.kv`);
      using kvB = await Deno.openKv(`${dir}/shared.kv`);
      const clock = new FakeClock();
      const admitted = await hammer(limiterOn(kvA, clock), limiterOn(kvB, clock), clock, 5_000);
      const exact = TEN_PER_MINUTE.burst + TEN_PER_MINUTE.limit * 5 / 60;
      assert(admitted <= exact + extraBound(TEN_PER_MINUTE, 2), `${admitted} admitted`);
      assert(admitted >= exact, `${admitted} admitted`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
  await t.step(
    "the long-run rate is the shared rate: the over-admission is paid back",
    async () => {
      using kv = await Deno.openKv(":memory:");
      const clock = new FakeClock();
      const a = limiterOn(kv, clock);
      const b = limiterOn(kv, clock);
      const admitted = await hammer(a, b, clock, 600_000);
      // 10 minutes at 10/minute: 100 + 10 burst, plus at most one burst of over-admission.
      assert(admitted <= 110 + extraBound(TEN_PER_MINUTE, 2), `${admitted} admitted`);
    },
  );
});

Deno.test("a new instance learns the shared consumption before it admits", async () => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const a = limiterOn(kv, clock);
  assertEquals(await takeTimes(a, 10), 10);
  await a.reconcile();
  const fresh = limiterOn(kv, clock);
  const { decision } = await fresh.take(check());
  assertEquals(decision.allowed, false, "the cold read sees the 10 tokens spent on A");
  // Refilled for everyone a minute later; a rebuilt bucket credits refill only from the end of
  // the slot it was spent in (10 s), erring towards refusing.
  clock.advance(70_000);
  assertEquals(await takeTimes(limiterOn(kv, clock), 10), 10);
});

Deno.test("an evicted bucket is rebuilt with its unpublished consumption; the map stays bounded", async (t) => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const limiter = limiterOn(kv, clock, { maxBuckets: 4 });
  await t.step("never more than maxBuckets states or pending buckets", async () => {
    for (let i = 0; i < 20; i++) {
      await limiter.take(check({ name: "anonymous_ip", key: `198.51.100.${i}` }));
      const { buckets, pending } = limiter.size();
      assert(buckets <= 4 && pending <= 4, `${buckets} states, ${pending} pending`);
    }
  });
  await t.step("a 5th new bucket before the next tick is refused as contended", async () => {
    const { decision } = await limiter.take(check({ name: "anonymous_ip", key: "203.0.113.99" }));
    assertEquals([decision.allowed, decision.contended], [false, true]);
    await limiter.reconcile();
    const after = await limiter.take(check({ name: "anonymous_ip", key: "203.0.113.99" }));
    assertEquals(after.decision.allowed, true, "the tick published and freed the slots");
  });
  await t.step("an emptied bucket evicted before publishing stays empty", async () => {
    await limiter.reconcile();
    assertEquals(await takeTimes(limiter, 10), 10);
    for (let i = 0; i < 3; i++) {
      await limiter.take(check({ name: "anonymous_ip", key: `192.0.2.${i}` }));
    }
    await limiter.take(check({ name: "anonymous_ip", key: "192.0.2.200" }));
    assertEquals(limiter.size().buckets, 4);
    assertEquals((await limiter.take(check())).decision.allowed, false);
  });
});

Deno.test("a failing reconcile is reported, kept and retried, and never fails open", async (t) => {
  using raw = await Deno.openKv(":memory:");
  const { kv, state } = instrumented(raw);
  const clock = new FakeClock();
  const logger = memoryLogger();
  const ticks: Array<() => void> = [];
  const limiter = createLocalRateLimiter({
    kv,
    clock,
    logger,
    rules: [TEN_PER_MINUTE],
    timers: {
      setInterval: (run) => ticks.push(run),
      clearInterval: () => ticks.splice(0),
    },
  });
  limiter.start();
  assertEquals(await takeTimes(limiter, 3), 3);
  await t.step("the tick's failure is logged, the consumption kept", async () => {
    state.failing = true;
    ticks[0]!();
    await assertRejects(() => limiter.reconcile(), Deno.errors.ConnectionRefused);
    assert(logger.lines.some((l) => l.includes("rate limit reconcile failed")), "logged");
    assertEquals(limiter.size().pending, 1);
  });
  await t.step(
    "a bucket older than L is not decided from memory while the store fails",
    async () => {
      clock.advance(MAX_LAG_MS + 1);
      await assertRejects(() => limiter.take(check()), Deno.errors.ConnectionRefused);
    },
  );
  await t.step("the next good tick publishes what was kept", async () => {
    state.failing = false;
    ticks[0]!();
    await limiter.reconcile();
    const shared = [];
    for await (const e of raw.list<Deno.KvU64>({ prefix: ["rate_shared"] })) shared.push(e.value);
    assertEquals(shared.map((v) => v.value), [3n]);
    assertEquals(limiter.size().pending, 0);
  });
  await t.step("close() stops the loop", async () => {
    await limiter.close();
    assertEquals(ticks.length, 0);
  });
});

Deno.test("start() and close(): the real timer is cleared and the rest is published", async () => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const limiter = limiterOn(kv, clock);
  limiter.start();
  assertEquals(await takeTimes(limiter, 2), 2);
  await limiter.close();
  // The sanitizers fail this test if the interval leaked.
  const shared = [];
  for await (const e of kv.list<Deno.KvU64>({ prefix: ["rate_shared"] })) shared.push(e.value);
  assertEquals(shared.map((v) => v.value), [2n]);
});

Deno.test("sweep() deletes the slots no rule reads any more and keeps the recent ones", async (t) => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const limiter = limiterOn(kv, clock);
  const left = async () => {
    const keys = [];
    for await (const e of kv.list({ prefix: ["rate_shared"] })) keys.push(e.key[3]);
    return keys;
  };
  await takeTimes(limiter, 2, { name: "user", key: "old" });
  await limiter.reconcile();
  clock.advance(10 * 60_000);
  await takeTimes(limiter, 2, { name: "user", key: "new" });
  await t.step("a reconcile a minute after the last sweep deletes the expired slots", async () => {
    await limiter.reconcile();
    assertEquals(await left(), ["new"]);
  });
  await t.step("sweep() keeps a slot while a rule may read it, then deletes it", async () => {
    clock.advance(30_000);
    assertEquals(await limiter.sweep(), 0);
    clock.advance(60_000);
    assertEquals(await limiter.sweep(), 1);
    assertEquals(await left(), []);
  });
});
