import { assert, assertEquals, assertThrows } from "../../_helpers/assert.ts";
import { FakeClock } from "../../_helpers/world.ts";
import {
  boundBucketKey,
  type BucketId,
  createRateLimiter,
  MAX_BUCKET_KEY_BYTES,
  parseRateLimit,
  rateBucketKey,
  type RateCheck,
  type RateLimit,
} from "../../../services/limits/rate_limiter.ts";

const FIVE_PER_MINUTE: RateLimit = { limit: 5, windowMs: 60_000, burst: 5 };
const IP: BucketId = { name: "login_ip", key: "203.0.113.7" };

function check(id: BucketId = IP, rule: RateLimit = FIVE_PER_MINUTE): RateCheck {
  return { id, rule };
}

async function consumeTimes(
  limiter: ReturnType<typeof createRateLimiter>,
  times: number,
  checks: readonly RateCheck[] = [check()],
): Promise<boolean[]> {
  const results: boolean[] = [];
  for (let i = 0; i < times; i++) results.push((await limiter.consume(checks)).allowed);
  return results;
}

Deno.test("consume() allows 5/minute five times, then refuses with Retry-After 12 s", async () => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const limiter = createRateLimiter({ kv, clock });

  assertEquals(await consumeTimes(limiter, 5), [true, true, true, true, true]);
  const sixth = await limiter.consume([check()]);
  assertEquals(sixth.allowed, false);
  assertEquals(sixth.remaining, 0);
  assertEquals(sixth.retryAfterSeconds, 12);
  assertEquals(sixth.limit, 5);
  assertEquals(sixth.contended, false);
  assertEquals(sixth.bucket, IP);
});

Deno.test("consume() refills one token per limit/window on the clock", async (t) => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const limiter = createRateLimiter({ kv, clock });
  await consumeTimes(limiter, 5);

  await t.step("just before one token has refilled it still refuses", async () => {
    clock.advance(11_999);
    const d = await limiter.consume([check()]);
    assertEquals(d.allowed, false);
    assertEquals(d.retryAfterSeconds, 1);
  });
  await t.step("at 12 s one token is back, and only one", async () => {
    clock.advance(1);
    assertEquals(await consumeTimes(limiter, 2), [true, false]);
  });
  await t.step("after a full window the bucket is full again, never fuller", async () => {
    clock.advance(10 * 60_000);
    assertEquals(await consumeTimes(limiter, 6), [true, true, true, true, true, false]);
  });
});

Deno.test("consume() lets a burst above the limit through, then refills at the limit", async () => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const limiter = createRateLimiter({ kv, clock });
  const rule = parseRateLimit("5/minute", 10);

  const burst = await consumeTimes(limiter, 11, [check(IP, rule)]);
  assertEquals(burst.filter(Boolean).length, 10);
  assertEquals(burst[10], false);
  clock.advance(12_000);
  assertEquals(await consumeTimes(limiter, 2, [check(IP, rule)]), [true, false]);
});

Deno.test("consume() reports remaining and the time the bucket is full again", async (t) => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const start = clock.now().getTime();
  const limiter = createRateLimiter({ kv, clock });

  await t.step("the first consume leaves burst - 1, full again in 12 s", async () => {
    const d = await limiter.consume([check()]);
    assertEquals(d.allowed, true);
    assertEquals(d.limit, 5);
    assertEquals(d.remaining, 4);
    assertEquals(d.retryAfterSeconds, 0);
    assertEquals(d.resetAt.getTime(), start + 12_000);
  });
  await t.step("a cost of 3 takes three tokens", async () => {
    const d = await limiter.consume([check()], 3);
    assertEquals(d.remaining, 1);
    assertEquals(d.resetAt.getTime(), start + 48_000);
  });
  await t.step("a cost larger than what is left is refused and takes nothing", async () => {
    const d = await limiter.consume([check()], 2);
    assertEquals(d.allowed, false);
    assertEquals(d.remaining, 1);
    assertEquals(d.retryAfterSeconds, 12);
    assertEquals((await limiter.consume([check()])).remaining, 0);
  });
  await t.step("half a token of refill is not a whole token", async () => {
    clock.advance(6_000);
    const d = await limiter.consume([check()]);
    assertEquals(d.allowed, false);
    assertEquals(d.remaining, 0);
    assertEquals(d.retryAfterSeconds, 6);
    assertEquals(d.resetAt.getTime(), start + 60_000);
  });
  await t.step("the stored record is the documented shape", async () => {
    const entry = await kv.get(rateBucketKey(IP.name, IP.key));
    assertEquals(entry.value, { tokens: 0, updated_at_ms: start });
  });
});

Deno.test("consume() over several buckets", async (t) => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const limiter = createRateLimiter({ kv, clock });
  const account: BucketId = { name: "login_account", key: "alice@example.com" };
  const loose: RateLimit = { limit: 100, windowMs: 60_000, burst: 100 };

  await t.step("a refusal by one bucket takes from none", async () => {
    await consumeTimes(limiter, 5, [check(account)]);
    const d = await limiter.consume([check(IP, loose), check(account)]);
    assertEquals(d.allowed, false);
    assertEquals(d.bucket, account);
    const ip = await limiter.consume([check(IP, loose)]);
    assertEquals(ip.remaining, 99);
  });
  await t.step("an allowed decision describes the bucket with the fewest tokens left", async () => {
    clock.advance(60_000);
    const d = await limiter.consume([check(IP, loose), check(account)]);
    assertEquals(d.allowed, true);
    assertEquals(d.bucket, account);
    assertEquals(d.limit, 5);
    assertEquals(d.remaining, 4);
  });
  await t.step("a refusal reports the longest wait among the short buckets", async () => {
    const slow: RateLimit = { limit: 1, windowMs: 3_600_000, burst: 1 };
    const user: BucketId = { name: "uploads_user", key: "u1" };
    await limiter.consume([check(user, slow)]);
    await consumeTimes(limiter, 4, [check(account)]);
    const d = await limiter.consume([check(account), check(user, slow)]);
    assertEquals(d.allowed, false);
    assertEquals(d.bucket, user);
    assertEquals(d.retryAfterSeconds, 3_600);
  });
});

Deno.test("consume() shares one budget between two handles on the same KV file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bulwark_rate_" });
  try {
    const path = `${dir}/kv.sqlite3`;
    using kvA = await Deno.openKv(path);
    using kvB = await Deno.openKv(path);
    const clock = new FakeClock();
    const a = createRateLimiter({ kv: kvA, clock });
    const b = createRateLimiter({ kv: kvB, clock });

    assertEquals(await consumeTimes(a, 3), [true, true, true]);
    assertEquals(await consumeTimes(b, 3), [true, true, false]);
    assertEquals((await a.consume([check()])).allowed, false);

    // Concurrent writers on two handles make SQLite report "database is locked"; the limiter
    // retries those, and may refuse a request as contended, but never overspends.
    const racer = { ...IP, key: "198.51.100.9" };
    const racing = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).consume([check(racer)])),
    );
    const allowed = racing.filter((d) => d.allowed).length;
    const leftover = (await consumeTimes(a, 6, [check(racer)])).filter(Boolean).length;
    assert(allowed >= 1, `allowed ${allowed}`);
    assertEquals(allowed + leftover, 5);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("consume() run 20 times concurrently on a 5-token bucket allows exactly 5", async () => {
  using kv = await Deno.openKv(":memory:");
  const limiter = createRateLimiter({ kv, clock: new FakeClock() });

  const decisions = await Promise.all(Array.from({ length: 20 }, () => limiter.consume([check()])));
  assertEquals(decisions.filter((d) => d.allowed).length, 5);
  assertEquals(decisions.filter((d) => d.contended).length, 0);
  assertEquals((await limiter.consume([check()])).allowed, false);
});

/** `kv` whose atomic commits first run `before(attempt)`, which may write or throw. */
function hookCommits(kv: Deno.Kv, before: (attempt: number) => Promise<void>): Deno.Kv {
  let attempt = 0;
  return new Proxy(kv, {
    get(target, prop) {
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          const commit = op.commit.bind(op);
          op.commit = async () => {
            await before(++attempt);
            return await commit();
          };
          return op;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

Deno.test("consume() under write contention", async (t) => {
  await t.step("refuses, not allows, when every commit loses a race", async () => {
    using kv = await Deno.openKv(":memory:");
    const clock = new FakeClock();
    // Another writer touches the bucket between every read and commit.
    const limiter = createRateLimiter({
      kv: hookCommits(kv, async () => {
        await kv.set(rateBucketKey(IP.name, IP.key), {
          tokens: 5,
          updated_at_ms: clock.now().getTime(),
        });
      }),
      clock,
      maxAttempts: 3,
    });
    const d = await limiter.consume([check()]);
    assertEquals(d.allowed, false);
    assertEquals(d.contended, true);
    assertEquals(d.retryAfterSeconds, 1);
    assertEquals(d.remaining, 5);
  });
  await t.step("retries a commit the store refused as busy", async () => {
    using kv = await Deno.openKv(":memory:");
    const limiter = createRateLimiter({
      kv: hookCommits(kv, (attempt) => {
        if (attempt === 1) return Promise.reject(new TypeError("database is locked"));
        return Promise.resolve();
      }),
      clock: new FakeClock(),
    });
    const d = await limiter.consume([check()]);
    assertEquals(d.allowed, true);
    assertEquals(d.remaining, 4);
  });
  await t.step("lets any other store error through", async () => {
    using kv = await Deno.openKv(":memory:");
    const limiter = createRateLimiter({
      kv: hookCommits(kv, () => Promise.reject(new Deno.errors.ConnectionRefused("down"))),
      clock: new FakeClock(),
    });
    let caught: unknown;
    try {
      await limiter.consume([check()]);
    } catch (error) {
      caught = error;
    }
    assert(caught instanceof Deno.errors.ConnectionRefused);
  });
});

Deno.test("consume() trusts the stored timestamp, not the record's presence", async (t) => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const now = clock.now().getTime();
  const limiter = createRateLimiter({ kv, clock });
  const key = rateBucketKey(IP.name, IP.key);

  await t.step("a malformed record counts as an empty bucket that refills from now", async () => {
    await kv.set(key, { tokens: "lots" });
    const d = await limiter.consume([check()]);
    assertEquals(d.allowed, false);
    assertEquals(d.retryAfterSeconds, 12);
    assertEquals((await kv.get(key)).value, { tokens: 0, updated_at_ms: now });
    clock.advance(12_000);
    assertEquals(await consumeTimes(limiter, 2), [true, false]);
  });
  await t.step(
    "a stamp from a clock running ahead earns no refill until it is reached",
    async () => {
      await kv.set(key, { tokens: 0, updated_at_ms: clock.now().getTime() + 30_000 });
      const d = await limiter.consume([check()]);
      assertEquals(d.allowed, false);
      assertEquals(d.retryAfterSeconds, 42);
    },
  );
  await t.step("tokens above the burst (a lowered rule) are capped", async () => {
    await kv.set(key, { tokens: 50, updated_at_ms: clock.now().getTime() });
    assertEquals((await limiter.consume([check()])).remaining, 4);
  });
});

Deno.test("consume() rejects misuse", async (t) => {
  using kv = await Deno.openKv(":memory:");
  const limiter = createRateLimiter({ kv, clock: new FakeClock() });
  const cases: [string, () => Promise<unknown>, new (...args: never[]) => Error][] = [
    ["no buckets", () => limiter.consume([]), TypeError],
    ["11 buckets", () =>
      limiter.consume(
        Array.from({ length: 11 }, (_, i) => check({ name: "b", key: String(i) })),
      ), TypeError],
    ["a repeated bucket", () => limiter.consume([check(), check()]), TypeError],
    ["a bad name", () => limiter.consume([check({ name: "Login IP", key: "k" })]), TypeError],
    [
      "a zero limit",
      () => limiter.consume([check(IP, { ...FIVE_PER_MINUTE, limit: 0 })]),
      TypeError,
    ],
    ["a cost of 0", () => limiter.consume([check()], 0), RangeError],
    ["a cost above the burst", () => limiter.consume([check()], 6), RangeError],
  ];
  for (const [name, fn, ErrorClass] of cases) {
    await t.step(`throws for ${name}`, async () => {
      let caught: unknown;
      try {
        await fn();
      } catch (error) {
        caught = error;
      }
      assert(caught instanceof ErrorClass, `expected ${ErrorClass.name}, got ${caught}`);
    });
  }
});

Deno.test("parseRateLimit()", async (t) => {
  await t.step("accepts every unit and its short forms", () => {
    assertEquals(parseRateLimit("5/minute"), { limit: 5, windowMs: 60_000, burst: 5 });
    assertEquals(parseRateLimit("100/minute"), { limit: 100, windowMs: 60_000, burst: 100 });
    assertEquals(parseRateLimit("5/min"), { limit: 5, windowMs: 60_000, burst: 5 });
    assertEquals(parseRateLimit("5/m"), { limit: 5, windowMs: 60_000, burst: 5 });
    assertEquals(parseRateLimit("10/second"), { limit: 10, windowMs: 1_000, burst: 10 });
    assertEquals(parseRateLimit("10/s"), { limit: 10, windowMs: 1_000, burst: 10 });
    assertEquals(parseRateLimit("1000/hour"), { limit: 1000, windowMs: 3_600_000, burst: 1000 });
    assertEquals(parseRateLimit("1000/h"), { limit: 1000, windowMs: 3_600_000, burst: 1000 });
    assertEquals(parseRateLimit("20/day"), { limit: 20, windowMs: 86_400_000, burst: 20 });
    assertEquals(parseRateLimit(" 20/d "), { limit: 20, windowMs: 86_400_000, burst: 20 });
  });
  await t.step("takes the burst separately", () => {
    assertEquals(parseRateLimit("5/minute", 20), { limit: 5, windowMs: 60_000, burst: 20 });
    assertEquals(parseRateLimit("100/minute", 1), { limit: 100, windowMs: 60_000, burst: 1 });
  });
  await t.step("rejects malformed text with a message naming it", () => {
    for (
      const bad of [
        "",
        "5",
        "minute",
        "5/",
        "/minute",
        "5/minutes",
        "5/Minute",
        "5 / minute",
        "5/10s",
        "-5/minute",
        "5.5/minute",
        "0/minute",
        "99999999999/s",
        "1e3/s",
        "5/constructor",
        "5/minute/x",
      ]
    ) {
      const error = assertThrows(() => parseRateLimit(bad), TypeError);
      assert(error.message.includes(`"${bad}"`), error.message);
    }
  });
  await t.step("rejects a burst that is not a whole number of at least 1", () => {
    for (const burst of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assertThrows(() => parseRateLimit("5/minute", burst), TypeError);
    }
  });
});

Deno.test("consume() bounds long and prefix-spoofing keys", async (t) => {
  using kv = await Deno.openKv(":memory:");
  const limiter = createRateLimiter({ kv, clock: new FakeClock() });
  const huge = "a".repeat(10_000);

  await t.step("short keys are kept as given", () => {
    assertEquals(boundBucketKey("203.0.113.7"), "203.0.113.7");
    assertEquals(boundBucketKey("é".repeat(128)), "é".repeat(128));
  });
  await t.step("keys over the byte cap become a fixed-size SHA-256 tag", () => {
    const bounded = boundBucketKey("é".repeat(129));
    assertEquals(bounded.length, "sha256:".length + 64);
    assert(bounded.startsWith("sha256:"));
    assert(new TextEncoder().encode(boundBucketKey(huge)).length <= MAX_BUCKET_KEY_BYTES);
  });
  await t.step("a client cannot name a hashed bucket directly", () => {
    const tag = boundBucketKey(huge);
    assert(boundBucketKey(tag) !== tag);
  });
  await t.step("a 10,000-character key is accepted and stored bounded", async () => {
    const d = await limiter.consume([check({ name: "login_account", key: huge })]);
    assertEquals(d.allowed, true);
    assertEquals(d.bucket.key, boundBucketKey(huge));
    const stored = await Array.fromAsync(kv.list({ prefix: ["rate_buckets", "login_account"] }));
    assertEquals(stored.map((e) => e.key), [rateBucketKey("login_account", boundBucketKey(huge))]);
  });
  await t.step("two long keys keep separate buckets", async () => {
    const other = "b".repeat(10_000);
    for (let i = 0; i < 4; i++) {
      await limiter.consume([check({ name: "login_account", key: huge })]);
    }
    assertEquals(
      (await limiter.consume([check({ name: "login_account", key: huge })])).allowed,
      false,
    );
    assertEquals(
      (await limiter.consume([check({ name: "login_account", key: other })])).allowed,
      true,
    );
  });
});
