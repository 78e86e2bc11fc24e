/**
 * Token buckets decided in this instance's memory and reconciled with every
 * other instance through the shared store in the background: the limiter of
 * the authenticated (`user`, `api_key`) and anonymous (`anonymous_ip`) classes,
 * so that an ordinary request costs no store write. Login-class and upload
 * buckets stay on the exact {@linkcode createRateLimiter} (rate_limiter.ts).
 *
 * The rule is the exact limiter's: `limit` tokens per `windowMs`, evenly, at
 * most `burst` held, a request takes `cost` or is refused. Each instance keeps
 * a bucket per client and, every {@linkcode SYNC_INTERVAL_MS} (T), its
 * reconciler adds what this instance admitted since the last tick to a shared
 * per-slot counter with an atomic `sum` (conflict-free across processes, no
 * versionstamp race), then reads the counters of the buckets used since the
 * last tick and deducts what the other instances added meanwhile. Deductions
 * may take a bucket below zero (a debt, repaid by refill): that is what makes
 * over-admission by several instances a bounded one-off instead of a rate.
 *
 * A bucket this instance has not synchronised for {@linkcode MAX_LAG_MS} (L) —
 * a new instance, a bucket evicted or unused for a while, or reconciles that
 * keep failing — is not decided from memory: the request first publishes the
 * bucket's unpublished consumption and reads its counters over a refill span
 * (one read, amortised over the requests that follow) and sets the bucket from
 * them, erring towards fewer tokens. If that fails the request fails with the store error: a broken store
 * never turns into unlimited admission.
 *
 * Over-admission bound. Let N instances share a bucket of capacity B refilling
 * r = limit / windowMs, and D = the longest time between an admission on one
 * instance and the moment every other instance has deducted it. Over any
 * period P all instances together admit at most
 *
 *     B + r·P  +  (N − 1) · (B + r·D)
 *
 * where one exact shared bucket admits B + r·P. Proof sketch: an instance
 * admits only with ≥ cost tokens, and its bucket is charged everything it
 * admitted plus everything it has learnt of the others, so on any interval the
 * charges it has seen are at most B + r·P; what it has not seen is each other
 * instance's admissions in the last D, and an instance's own admissions over
 * any span D are at most B + r·D (its own bucket). While reconciles succeed,
 * D ≤ T + L (published within T; a bucket's view is at most L old), so the
 * extra is at most (N − 1) · (B + limit · (T + L) / windowMs): with the
 * defaults (T = 250 ms, L = 1 s, 100/minute, burst 100) about (N − 1) × 102
 * requests, once (a debt learnt late is repaid, so the extra does not recur
 * per window). When an instance's reconciles fail it stops deciding from
 * memory after L: what the others cannot see of it is then at most its
 * admissions in its last L before the failure plus in the 2L after its next
 * success, so the extra stays within (N − 1) · (2B + 3 · limit · L / windowMs)
 * (assuming a commit completes within L).
 *
 * Shared keys: `["rate_shared", slotStart, name, key]`, a `Deno.KvU64` summed
 * by every instance. Slots are at least 10 s (`MIN_SLOT_MS`: twice the
 * clock skew instances may have) and an eighth of the time a bucket takes to
 * refill, so a cold read of one bucket is one `getMany` of ≤ 10 keys. Verified
 * on Deno 2.9.6's embedded store: a `sum` mutation ignores `expireIn` and even
 * clears an expiry set before, so the counters cannot expire by themselves;
 * each reconciler that wrote deletes, once a minute, the slots older than the
 * longest span any rule reads (one range `list`, since the slot start leads the key).
 *
 * Memory: at most `maxBuckets` bucket states (least recently used evicted; an
 * evicted bucket is rebuilt from the store on its next use) and at most
 * `maxBuckets` buckets with unpublished consumption (beyond that a request for
 * a new bucket is refused as contended until the next tick).
 */
import type { Clock } from "../core/clock.ts";
import { rateSharedBefore, rateSharedKey } from "../core/kv_keys.ts";
import type { Logger } from "../core/logger.ts";
import {
  type Bucket,
  counterOf,
  describe,
  emptyBucket,
  EPSILON,
  estimate,
  horizonOf,
  recentSlots,
  refill,
  slotOf,
  tagOf,
} from "./local_buckets.ts";
import {
  assertBucketName,
  assertRule,
  boundBucketKey,
  type BucketId,
  type RateCheck,
  type RateDecision,
  type RateLimit,
} from "./rate_limiter.ts";

/**
 * Reconcile interval T. The bound's burst term dominates (r·T is 0.4 token at 100/minute),
 * so T weighs how soon a flood spread over instances is cut off (within T + L) against the
 * store cost of a busy instance: ≤ 4 commits/s and one `getMany` per ~3 buckets used per
 * tick, nothing when idle. Close to the revocation feed's 200 ms poll.
 */
export const SYNC_INTERVAL_MS = 250;
/** Longest a bucket is decided from memory without a successful reconcile (L). */
export const MAX_LAG_MS = 1_000;
/** Bucket states kept per instance. */
export const MAX_LOCAL_BUCKETS = 10_000;

/** How often expired slots are deleted. */
const SWEEP_EVERY_MS = 60_000;
/** Mutations per publishing commit (the store allows 1000). */
const PUBLISH_CHUNK = 500;
/** Keys of one `getMany`. */
const GET_MANY_LIMIT = 10;
/** Expired slots deleted per sweep; the rest wait for the next one. */
const SWEEP_LIMIT = 1_000;

/** The result of {@linkcode LocalRateLimiter.take}. */
export interface LocalTake {
  readonly decision: RateDecision;
  /**
   * Gives the tokens back (an exact bucket checked with this one refused), as long as
   * they are not published yet; once published they stay spent (conservative).
   */
  undo(): void;
}

/** Timer functions, injected so tests can drive the loop without sleeping. */
export interface Timers {
  setInterval(run: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** Reconciled in-memory token buckets; see the module doc for the bound. */
export interface LocalRateLimiter {
  /**
   * Takes `cost` tokens from the bucket, deciding in memory; goes to the store only
   * for a bucket not synchronised within L (a read, and a write only when reconciles
   * failed and left its consumption unpublished).
   *
   * @param cost @default 1
   * @throws {TypeError} for an invalid bucket name or rule.
   * @throws {RangeError} when `cost` is not positive or exceeds the burst.
   */
  take(check: RateCheck, cost?: number): Promise<LocalTake>;
  /** One reconcile: publishes this instance's consumption, then deducts the others'. */
  reconcile(): Promise<void>;
  /** Deletes shared slots older than any rule reads; resolves to how many. */
  sweep(): Promise<number>;
  /** Starts reconciling every T; failures are logged and retried on the next tick. */
  start(): void;
  /** Stops the loop and publishes what is left (a failure is logged). */
  close(): Promise<void>;
  /** Bucket states held and buckets with unpublished consumption (both ≤ maxBuckets). */
  size(): { buckets: number; pending: number };
}

/** Dependencies of {@linkcode createLocalRateLimiter}. */
export interface LocalRateLimiterDeps {
  kv: Deno.Kv;
  clock: Clock;
  logger: Logger;
  /** Every rule the limiter will be asked about, so the sweep keeps what they read. */
  rules: readonly RateLimit[];
  /** @default SYNC_INTERVAL_MS */
  intervalMs?: number;
  /** @default MAX_LAG_MS */
  maxLagMs?: number;
  /** @default MAX_LOCAL_BUCKETS */
  maxBuckets?: number;
  /** @default the global timers */
  timers?: Timers;
}

interface Pending {
  readonly id: BucketId;
  readonly slotMs: number;
  count: number;
}

/** Creates the local limiter of one runtime; `start()` begins reconciling. */
export function createLocalRateLimiter(deps: LocalRateLimiterDeps): LocalRateLimiter {
  const { kv, clock, logger } = deps;
  const intervalMs = deps.intervalMs ?? SYNC_INTERVAL_MS;
  const maxLagMs = deps.maxLagMs ?? MAX_LAG_MS;
  const maxBuckets = deps.maxBuckets ?? MAX_LOCAL_BUCKETS;
  const timers: Timers = deps.timers ?? {
    setInterval: (run, ms) => setInterval(run, ms),
    clearInterval: (handle) => clearInterval(handle as number),
  };
  if (!Number.isSafeInteger(maxBuckets) || maxBuckets < 1) {
    throw new TypeError(
      `Cannot create local rate limiter: maxBuckets must be ≥ 1, got ${maxBuckets}`,
    );
  }
  let horizonMs = 0;
  for (const rule of deps.rules) horizonMs = Math.max(horizonMs, horizonOf(rule));

  const buckets = new Map<string, Bucket>();
  const loading = new Map<string, Promise<Bucket>>();
  let pending = new Map<string, Pending>();
  let running: Promise<void> | null = null;
  let timer: unknown;
  let lastSweep = clock.now().getTime();
  let published = false;
  let failures = 0;

  function touch(tag: string, bucket: Bucket): void {
    buckets.delete(tag);
    buckets.set(tag, bucket);
    while (buckets.size > maxBuckets) buckets.delete(buckets.keys().next().value!);
  }

  /** Publishes `entries` (slots of `now`); records them as this instance's in `stateOf`. */
  async function publish(
    entries: readonly Pending[],
    now: number,
    stateOf: (tag: string) => Bucket | undefined,
  ): Promise<void> {
    for (let i = 0; i < entries.length; i += PUBLISH_CHUNK) {
      const chunk = entries.slice(i, i + PUBLISH_CHUNK);
      try {
        const op = kv.atomic();
        for (const p of chunk) {
          op.mutate({
            type: "sum",
            key: rateSharedKey(slotOf(now, p.slotMs), p.id.name, p.id.key),
            value: new Deno.KvU64(BigInt(p.count)),
          });
        }
        // Sums carry no checks: the commit cannot lose a race, only fail.
        await op.commit();
      } catch (error) {
        restore(entries.slice(i));
        throw error;
      }
      for (const p of chunk) {
        const bucket = stateOf(tagOf(p.id));
        const slot = slotOf(now, p.slotMs);
        bucket?.mine.set(slot, (bucket.mine.get(slot) ?? 0) + p.count);
      }
    }
  }

  /** Puts unpublished consumption back, to go with the next tick. */
  function restore(entries: readonly Pending[]): void {
    for (const p of entries) {
      const tag = tagOf(p.id);
      const current = pending.get(tag);
      if (current === undefined) pending.set(tag, p);
      else current.count += p.count;
    }
  }

  async function reconcileOnce(): Promise<void> {
    const now = clock.now().getTime();
    const batch = [...pending.values()];
    pending = new Map();
    const due = [...buckets.values()].filter((b) => b.dirty);
    for (const b of due) b.dirty = false;
    try {
      await publish(batch, now, (tag) => buckets.get(tag));
      await readBack(due, now);
    } catch (error) {
      for (const b of due) b.dirty = true;
      throw error;
    }
    published ||= batch.length > 0;
    // An instance that wrote nothing since its last sweep leaves sweeping to the writers.
    if (published && horizonMs > 0 && now - lastSweep >= SWEEP_EVERY_MS) {
      published = false;
      lastSweep = now;
      await sweepOnce(now);
    }
  }

  /**
   * Reads the current slots of `due` (and any other slot a bucket still tracks) and
   * deducts the others' consumption since the last read.
   */
  async function readBack(due: readonly Bucket[], now: number): Promise<void> {
    const slots = due.map((b) => {
      const read = new Set(recentSlots(b, now));
      for (const slot of b.seen.keys()) read.add(slot);
      return [...read].sort((x, y) => x - y);
    });
    const keys = due.flatMap((b, j) => slots[j]!.map((s) => rateSharedKey(s, b.id.name, b.id.key)));
    const totals: number[] = [];
    for (let i = 0; i < keys.length; i += GET_MANY_LIMIT) {
      const entries = await kv.getMany<Deno.KvU64[]>(keys.slice(i, i + GET_MANY_LIMIT));
      for (const e of entries) totals.push(counterOf(e.value));
    }
    let k = 0;
    due.forEach((b, j) => {
      let learnt = 0;
      for (const slot of slots[j]!) {
        const others = Math.max(0, totals[k++]! - (b.mine.get(slot) ?? 0));
        learnt += Math.max(0, others - (b.seen.get(slot) ?? 0));
        b.seen.set(slot, others);
      }
      const oldest = slotOf(now, b.slotMs) - b.slotMs;
      for (const map of [b.mine, b.seen]) {
        for (const slot of map.keys()) if (slot < oldest) map.delete(slot);
      }
      refill(b, now);
      b.tokens -= learnt;
      b.syncedAt = now;
    });
  }

  async function sweepOnce(now: number): Promise<number> {
    const stale: Deno.KvKey[] = [];
    const iter = kv.list({ start: ["rate_shared"], end: rateSharedBefore(now - horizonMs) }, {
      limit: SWEEP_LIMIT,
    });
    for await (const entry of iter) stale.push(entry.key);
    for (let i = 0; i < stale.length; i += PUBLISH_CHUNK) {
      const op = kv.atomic();
      for (const key of stale.slice(i, i + PUBLISH_CHUNK)) op.delete(key);
      await op.commit();
    }
    return stale.length;
  }

  /**
   * Brings a cold or stale bucket up to date from the store: publishes its unpublished
   * consumption, then reads its counters over a whole refill span (one `getMany`).
   */
  function load(tag: string, id: BucketId, rule: RateLimit): Promise<Bucket> {
    const inFlight = loading.get(tag);
    if (inFlight !== undefined) return inFlight;
    const promise = (async () => {
      // A tick publishing right now must land first (and record it as ours), or the read
      // below would miss it; from then on no tick sees the bucket until it is rebuilt.
      await running?.catch(() => undefined);
      const existing = buckets.get(tag);
      buckets.delete(tag);
      const now = clock.now().getTime();
      const bucket = existing ?? emptyBucket(id, rule);
      const own = pending.get(tag);
      pending.delete(tag);
      if (own !== undefined) await publish([own], now, () => bucket);
      await rebuild(bucket, now);
      touch(tag, bucket);
      return bucket;
    })().finally(() => loading.delete(tag));
    loading.set(tag, promise);
    return promise;
  }

  /**
   * Sets a bucket from the counters of its refill span. A state this instance still holds
   * keeps its tokens (and any debt) less the others' consumption since it last read; a new
   * one starts from the most the counters allow ({@linkcode estimate}).
   */
  async function rebuild(bucket: Bucket, now: number): Promise<void> {
    const { slotMs, spanSlots, id, rule } = bucket;
    const current = slotOf(now, slotMs);
    const span: number[] = [];
    for (let s = spanSlots; s >= -1; s--) span.push(current - s * slotMs);
    const entries = await kv.getMany<Deno.KvU64[]>(
      span.map((s) => rateSharedKey(s, id.name, id.key)),
    );
    const totals = entries.map((e) => counterOf(e.value));
    if (bucket.syncedAt === Number.NEGATIVE_INFINITY) {
      bucket.tokens = estimate(rule, span, totals, slotMs, now);
    } else {
      // Slots from the last read on: what the others added since is news.
      const since = slotOf(bucket.syncedAt, slotMs) - slotMs;
      let learnt = 0;
      span.forEach((slot, i) => {
        if (slot < since) return;
        const others = Math.max(0, totals[i]! - (bucket.mine.get(slot) ?? 0));
        learnt += Math.max(0, others - (bucket.seen.get(slot) ?? 0));
      });
      refill(bucket, now);
      bucket.tokens -= learnt;
    }
    bucket.at = Math.max(bucket.at, now);
    bucket.seen.clear();
    for (const slot of bucket.mine.keys()) if (slot < current - slotMs) bucket.mine.delete(slot);
    span.forEach((slot, i) => {
      if (slot >= current - slotMs) {
        bucket.seen.set(slot, Math.max(0, totals[i]! - (bucket.mine.get(slot) ?? 0)));
      }
    });
    bucket.syncedAt = now;
  }

  const limiter: LocalRateLimiter = {
    async take(check, cost = 1) {
      assertBucketName(check.id.name);
      assertRule(check.rule, check.id.name);
      if (!Number.isFinite(cost) || cost <= 0 || cost > check.rule.burst) {
        throw new RangeError(
          `Cannot take ${cost} tokens from bucket "${check.id.name}": ` +
            `cost must be positive and at most the burst ${check.rule.burst}`,
        );
      }
      horizonMs = Math.max(horizonMs, horizonOf(check.rule));
      const id = { name: check.id.name, key: boundBucketKey(check.id.key) };
      const tag = tagOf(id);
      let bucket = buckets.get(tag);
      if (bucket === undefined || clock.now().getTime() - bucket.syncedAt > maxLagMs) {
        bucket = await load(tag, id, check.rule);
      }
      const now = clock.now().getTime();
      touch(tag, bucket);
      refill(bucket, now);
      if (bucket.tokens + EPSILON < cost) {
        return { decision: describe(bucket, now, cost, false), undo };
      }
      let entry = pending.get(tag);
      if (entry === undefined) {
        if (pending.size >= maxBuckets) {
          // Fail closed: more new buckets than can be tracked before the next tick.
          return { decision: { ...describe(bucket, now, cost, false), contended: true }, undo };
        }
        entry = { id, slotMs: bucket.slotMs, count: 0 };
        pending.set(tag, entry);
      }
      entry.count += cost;
      bucket.tokens -= cost;
      bucket.dirty = true;
      const spent = entry;
      const held = bucket;
      return {
        decision: describe(bucket, now, cost, true),
        undo() {
          if (pending.get(tag) !== spent || spent.count < cost) return;
          spent.count -= cost;
          if (spent.count === 0) pending.delete(tag);
          held.tokens += cost;
        },
      };
    },
    reconcile() {
      running ??= reconcileOnce().finally(() => {
        running = null;
      });
      return running;
    },
    sweep() {
      return sweepOnce(clock.now().getTime());
    },
    start() {
      if (timer !== undefined) return;
      timer = timers.setInterval(() => {
        // A slow tick is not stacked on: the next one starts after it.
        if (running !== null) return;
        limiter.reconcile().then(
          () => {
            if (failures > 0) {
              logger.info("rate limit reconcile recovered", { failed_ticks: failures });
            }
            failures = 0;
          },
          (error) => {
            // Kept and retried on the next tick; buckets older than L read the store meanwhile.
            failures++;
            if (failures === 1 || failures % 40 === 0) {
              logger.warn("rate limit reconcile failed; retrying next tick", {
                failed_ticks: failures,
                error,
              });
            }
          },
        );
      }, intervalMs);
    },
    async close() {
      if (timer !== undefined) timers.clearInterval(timer);
      timer = undefined;
      try {
        await running?.catch(() => undefined);
        // What this instance admitted last still counts for the others.
        if (pending.size > 0) await limiter.reconcile();
      } catch (error) {
        logger.warn("rate limit consumption not published at shutdown", { error });
      }
    },
    size: () => ({ buckets: buckets.size, pending: pending.size }),
  };
  return limiter;
}

function undo(): void {}
