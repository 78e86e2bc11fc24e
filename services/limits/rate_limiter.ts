/**
 * KV-backed token buckets, shared by every instance that opens the same store.
 *
 * Each bucket refills `limit` tokens evenly over `windowMs` and holds at most
 * `burst`. A request takes `cost` tokens from every bucket it is checked
 * against, or from none of them.
 */
import { sha256Hex } from "../core/crypto.ts";
import { tryCommit } from "../core/kv.ts";
import type { Clock } from "../core/clock.ts";
import { createKeyedQueue } from "../core/keyed_queue.ts";

/** A token-bucket rule: `limit` tokens per `windowMs`, at most `burst` held. */
export interface RateLimit {
  /** Tokens added per window, evenly spread (5/minute adds one every 12 s). */
  readonly limit: number;
  /** Length of the refill window in milliseconds. */
  readonly windowMs: number;
  /** Capacity of the bucket, so the largest burst; at least 1. */
  readonly burst: number;
}

/** Which bucket: a rule family (`name`, from code) and a client value (`key`). */
export interface BucketId {
  /** Lower snake_case rule family, e.g. `"login_ip"`; at most 64 characters. */
  readonly name: string;
  /** The client value, e.g. an IP, a normalised email or a user id; any length. */
  readonly key: string;
}

/** One bucket to take tokens from, with the rule that governs it. */
export interface RateCheck {
  readonly id: BucketId;
  readonly rule: RateLimit;
}

/** Outcome of {@linkcode RateLimiter.consume}, describing the most restrictive bucket. */
export interface RateDecision {
  /** True when every bucket had the tokens and they were all taken. */
  readonly allowed: boolean;
  /** The described bucket's `rule.limit`, for `X-RateLimit-Limit`. */
  readonly limit: number;
  /** Whole tokens left in the described bucket, for `X-RateLimit-Remaining`. */
  readonly remaining: number;
  /** When the described bucket is full again, for `X-RateLimit-Reset`. */
  readonly resetAt: Date;
  /** 0 when allowed; otherwise whole seconds until a retry can succeed (at least 1). */
  readonly retryAfterSeconds: number;
  /** The described bucket (with its key as stored: bounded, see {@linkcode boundBucketKey}). */
  readonly bucket: BucketId;
  /** The rule of the described bucket. */
  readonly rule: RateLimit;
  /**
   * True when the refusal is only because every commit lost a race or found the
   * store busy (see {@linkcode RateLimiterDeps.maxAttempts}); worth logging.
   */
  readonly contended: boolean;
}

/** The value stored per bucket. */
export interface BucketState {
  /** Tokens held at `updated_at_ms`; fractional while refilling. */
  tokens: number;
  /** Unix milliseconds the token count was computed at. */
  updated_at_ms: number;
}

/** Takes tokens from KV token buckets. */
export interface RateLimiter {
  /**
   * Takes `cost` tokens from every bucket in `checks` in one atomic commit, or
   * from none when any bucket is short. The decision describes the most
   * restrictive bucket: the lowest `remaining` when allowed, the longest wait
   * when refused.
   *
   * No AppError: the caller turns a refusal into `RateLimitedError`. Store
   * failures other than a busy SQLite file reject with the KV error unchanged.
   *
   * @param cost Tokens to take from each bucket. @default 1
   * @throws {TypeError} When `checks` is empty, has more than 10 entries, repeats a bucket or
   * holds an invalid name or rule.
   * @throws {RangeError} When `cost` is not positive or exceeds a bucket's `burst`.
   */
  consume(checks: readonly RateCheck[], cost?: number): Promise<RateDecision>;
}

/** Dependencies of {@linkcode createRateLimiter}. */
export interface RateLimiterDeps {
  kv: Deno.Kv;
  clock: Clock;
  /** Builds the KV key of a bucket; gets the bounded key. @default rateBucketKey */
  keyFor?: (id: BucketId) => Deno.KvKey;
  /**
   * Commits tried before giving up on a contended bucket set (lost races and
   * busy-store errors); the request is then refused (fail closed) with
   * `contended: true`. @default 8
   */
  maxAttempts?: number;
}

/** Longest client key, in UTF-8 bytes, stored as given; longer keys are hashed. */
export const MAX_BUCKET_KEY_BYTES = 256;

/** Largest count `parseRateLimit` accepts. */
const MAX_COUNT = 1_000_000_000;

/** Buckets whose last committed state an instance keeps to skip a read. */
const MAX_REMEMBERED_BUCKETS = 10_000;

/** Most buckets per consume: `Deno.Kv.getMany` reads at most 10 keys. */
const MAX_CHECKS = 10;

/** Prefix of hashed keys; client keys with this prefix are hashed too, so they cannot collide. */
const HASHED_PREFIX = "sha256:";

/** Tolerance for floating-point refill arithmetic, in tokens. */
const EPSILON = 1e-9;

/** Extra lifetime of a bucket record past the moment it is full again. */
const EXPIRY_MARGIN_MS = 1_000;

const BUCKET_NAME = /^[a-z][a-z0-9_]{0,63}$/;

const RATE_TEXT = /^(\d{1,10})\/(second|minute|hour|day|min|s|m|h|d)$/;

const UNIT_MS: ReadonlyMap<string, number> = new Map([
  ["s", 1_000],
  ["second", 1_000],
  ["m", 60_000],
  ["min", 60_000],
  ["minute", 60_000],
  ["h", 3_600_000],
  ["hour", 3_600_000],
  ["d", 86_400_000],
  ["day", 86_400_000],
]);

const encoder = new TextEncoder();

/** KV key of a token bucket. */
export function rateBucketKey(name: string, key: string): ["rate_buckets", string, string] {
  return ["rate_buckets", name, key];
}

/** KV key of the marker that a bucket's refusal was audited in the current window. */
export function rateRefusalAuditedKey(
  name: string,
  key: string,
): ["rate_refusals_audited", string, string] {
  return ["rate_refusals_audited", name, key];
}

/**
 * Parses `"<count>/<unit>"`, e.g. `"5/minute"`, `"10/s"`, `"1000/hour"`; units
 * are second, minute, hour, day and s, m, min, h, d.
 *
 * @param burst Bucket capacity. @default the count
 * @throws {TypeError} When the text or the burst is invalid.
 */
export function parseRateLimit(text: string, burst?: number): RateLimit {
  const match = RATE_TEXT.exec(text.trim());
  const unitMs = match?.[2] === undefined ? undefined : UNIT_MS.get(match[2]);
  if (match?.[1] === undefined || unitMs === undefined) {
    throw new TypeError(
      `Cannot parse rate limit "${text}": expected "<count>/<unit>" such as "5/minute", ` +
        `with unit second, minute, hour or day (or s, m, min, h, d)`,
    );
  }
  const limit = Number(match[1]);
  if (limit < 1 || limit > MAX_COUNT) {
    throw new TypeError(
      `Cannot parse rate limit "${text}": count must be between 1 and ${MAX_COUNT}`,
    );
  }
  const capacity = burst ?? limit;
  if (!Number.isSafeInteger(capacity) || capacity < 1) {
    throw new TypeError(
      `Cannot parse rate limit "${text}": burst must be a whole number of at least 1, ` +
        `got ${capacity}`,
    );
  }
  return Object.freeze({ limit, windowMs: unitMs, burst: capacity });
}

/**
 * Returns `key` unchanged when it is at most {@linkcode MAX_BUCKET_KEY_BYTES}
 * UTF-8 bytes, else `"sha256:<hex>"` of it, so a client cannot make huge KV keys
 * (Deno KV keys are capped at 2 KiB). Keys that already start with `"sha256:"`
 * are hashed as well, so a client cannot name another client's hashed bucket.
 */
export function boundBucketKey(key: string): string {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short keys need no encoding (hot path).
  const fits = key.length * 3 <= MAX_BUCKET_KEY_BYTES ||
    encoder.encode(key).length <= MAX_BUCKET_KEY_BYTES;
  if (!key.startsWith(HASHED_PREFIX) && fits) return key;
  return HASHED_PREFIX + sha256Hex(key);
}

/**
 * Creates a rate limiter over `deps.kv`.
 *
 * @throws {TypeError} When `deps.maxAttempts` is not a whole number of at least 1.
 */
export function createRateLimiter(deps: RateLimiterDeps): RateLimiter {
  const { kv, clock } = deps;
  const keyFor = deps.keyFor ?? ((id: BucketId) => rateBucketKey(id.name, id.key));
  const maxAttempts = deps.maxAttempts ?? 8;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    throw new TypeError(
      "Cannot create rate limiter: maxAttempts must be a whole number of at least 1, " +
        `got ${maxAttempts}`,
    );
  }

  // Consumes of the same bucket set in this instance run one after another: they
  // would only lose versionstamp races to each other (a burst of parallel requests
  // from one user or IP), so only other instances can still contend.
  const queue = createKeyedQueue();
  // The last state this instance committed per bucket, newest last (bounded).
  const recent = new Map<string, Deno.KvEntry<unknown>>();
  const cacheKey = (key: Deno.KvKey) => JSON.stringify(key);
  function remember(key: Deno.KvKey, entry: Deno.KvEntry<unknown>): void {
    const id = cacheKey(key);
    recent.delete(id);
    recent.set(id, entry);
    if (recent.size > MAX_REMEMBERED_BUCKETS) recent.delete(recent.keys().next().value!);
  }

  return {
    async consume(checks, cost = 1) {
      const buckets = prepare(checks, cost);
      const keys = buckets.map((b) => keyFor(b.id));
      return await queue.run(JSON.stringify(keys), () => consumeOnce(buckets, keys, cost));
    },
  };

  async function consumeOnce(
    buckets: ReturnType<typeof prepare>,
    keys: Deno.KvKey[],
    cost: number,
  ): Promise<RateDecision> {
    const now = clock.now().getTime();
    let last: Evaluated[] = [];
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      // The first attempt may start from what this instance last wrote: the commit's
      // versionstamp check proves it is still current, and a failed check reads afresh.
      const remembered = attempt === 0 ? keys.map((k) => recent.get(cacheKey(k))) : [];
      const fromMemory = remembered.length > 0 && remembered.every((e) => e !== undefined);
      // Otherwise a strong read: this decides whether a request may proceed.
      const entries = fromMemory
        ? remembered as Deno.KvEntryMaybe<unknown>[]
        : await kv.getMany<unknown[]>(keys);
      const evaluated = buckets.map((b, i) => evaluate(b, entries[i]?.value, now));
      if (evaluated.some((e) => e.tokens + EPSILON < cost)) {
        // A refusal is never decided from memory: confirm it with a read.
        if (fromMemory) continue;
        // Nothing is taken, so nothing is written (a refused flood costs reads only),
        // except to replace a malformed record, which would otherwise never refill.
        if (evaluated.some((e) => e.malformed)) {
          const repair = kv.atomic();
          evaluated.forEach((e, i) => {
            if (!e.malformed) return;
            const state: BucketState = { tokens: 0, updated_at_ms: now };
            repair.check(entries[i] as Deno.KvEntryMaybe<unknown>).set(
              keys[i] as Deno.KvKey,
              state,
              { expireIn: expiryFor(0, e.bucket.rule) },
            );
          });
          // A lost race or a busy store is fine: another writer replaced the record.
          await tryCommit(repair, attempt);
        }
        return refusal(evaluated, cost, now, false);
      }
      const op = kv.atomic();
      for (const entry of entries) op.check(entry);
      last = evaluated;
      const taken = evaluated.map((e, i) => {
        const left = Math.max(0, e.tokens - cost);
        const state: BucketState = { tokens: left, updated_at_ms: e.at };
        op.set(keys[i] as Deno.KvKey, state, { expireIn: expiryFor(left, e.bucket.rule) });
        return { ...e, tokens: left };
      });
      const versionstamp = await tryCommit(op, attempt);
      if (versionstamp !== null) {
        taken.forEach((e, i) => {
          const key = keys[i] as Deno.KvKey;
          remember(key, { key, value: { tokens: e.tokens, updated_at_ms: e.at }, versionstamp });
        });
        return allowance(taken);
      }
      // Lost a race (another instance, or an overlapping bucket set): read again.
      keys.forEach((k) => recent.delete(cacheKey(k)));
    }
    // Fail closed: under this much contention refusing is safer than an unchecked write.
    return refusal(last, cost, now, true);
  }
}

interface Bucket {
  id: BucketId;
  rule: RateLimit;
}

interface Evaluated {
  bucket: Bucket;
  /** The stored record was not a {@linkcode BucketState}. */
  malformed: boolean;
  /** Tokens held at `at`, after refill. */
  tokens: number;
  /** Unix ms the token count refers to. */
  at: number;
}

function prepare(checks: readonly RateCheck[], cost: number): Bucket[] {
  if (checks.length === 0) throw new TypeError("Cannot consume: no buckets given");
  if (checks.length > MAX_CHECKS) {
    throw new TypeError(
      `Cannot consume: ${checks.length} buckets given, at most ${MAX_CHECKS} are allowed`,
    );
  }
  if (!Number.isFinite(cost) || cost <= 0) {
    throw new RangeError(`Cannot consume: cost must be a positive number, got ${cost}`);
  }
  const seen = new Set<string>();
  return checks.map(({ id, rule }) => {
    assertBucketName(id.name);
    assertRule(rule, id.name);
    if (cost > rule.burst) {
      throw new RangeError(
        `Cannot consume ${cost} tokens from bucket "${id.name}": its burst is ${rule.burst}`,
      );
    }
    const bounded = { name: id.name, key: boundBucketKey(id.key) };
    const tag = JSON.stringify([bounded.name, bounded.key]);
    if (seen.has(tag)) throw new TypeError(`Cannot consume: bucket "${id.name}" is given twice`);
    seen.add(tag);
    return { id: bounded, rule };
  });
}

/** @throws {TypeError} for a bucket name that is not lower_snake. */
export function assertBucketName(name: string): void {
  if (!BUCKET_NAME.test(name)) {
    throw new TypeError(
      `Invalid bucket name "${name}": expected lower snake_case of at most 64 characters`,
    );
  }
}

/** @throws {TypeError} for a rule that is not a valid {@linkcode RateLimit}. */
export function assertRule(rule: RateLimit, name: string): void {
  const valid = Number.isFinite(rule.limit) && rule.limit > 0 &&
    Number.isFinite(rule.windowMs) && rule.windowMs > 0 &&
    Number.isFinite(rule.burst) && rule.burst >= 1;
  if (!valid) {
    throw new TypeError(
      `Invalid rate limit for bucket "${name}": limit and windowMs must be positive ` +
        `and burst at least 1, got ${JSON.stringify(rule)}`,
    );
  }
}

/** Tokens held now: the stored count plus the refill since it was stored. */
function evaluate(bucket: Bucket, stored: unknown, now: number): Evaluated {
  if (stored === null || stored === undefined) {
    return { bucket, malformed: false, tokens: bucket.rule.burst, at: now };
  }
  if (!isBucketState(stored)) {
    // A malformed record is an impossible state; treat the bucket as empty from now
    // (fail closed, and consume() rewrites it so it refills) rather than as full.
    return { bucket, malformed: true, tokens: 0, at: now };
  }
  // Another instance's clock may run ahead: never refill for negative time, and keep
  // the later timestamp so that the same interval is not credited twice.
  const at = Math.max(now, stored.updated_at_ms);
  const gained = (now - Math.min(now, stored.updated_at_ms)) * bucket.rule.limit /
    bucket.rule.windowMs;
  const tokens = Math.min(bucket.rule.burst, Math.max(0, stored.tokens) + gained);
  return { bucket, malformed: false, tokens, at };
}

function isBucketState(value: unknown): value is BucketState {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.tokens === "number" && Number.isFinite(v.tokens) &&
    typeof v.updated_at_ms === "number" && Number.isFinite(v.updated_at_ms);
}

/**
 * Lifetime of a bucket record holding `tokens`: until it is full again, plus a margin.
 * An earlier expiry would hand out tokens early; a later one only keeps a full
 * bucket's record around. expireIn is only cleanup: the stored timestamp decides.
 */
function expiryFor(tokens: number, rule: RateLimit): number {
  return Math.ceil(msToGain(rule.burst - tokens, rule)) + EXPIRY_MARGIN_MS;
}

/** Milliseconds for a bucket to gain `tokens` tokens. */
function msToGain(tokens: number, rule: RateLimit): number {
  return Math.max(0, tokens) * rule.windowMs / rule.limit;
}

function remainingOf(e: Evaluated): number {
  return Math.floor(e.tokens + EPSILON);
}

function resetOf(e: Evaluated): number {
  return e.at + Math.ceil(msToGain(e.bucket.rule.burst - e.tokens, e.bucket.rule));
}

function allowance(evaluated: readonly Evaluated[]): RateDecision {
  // Most restrictive: fewest whole tokens left, then the longest time to refill.
  let pick = evaluated[0] as Evaluated;
  for (const e of evaluated) {
    const r = remainingOf(e) - remainingOf(pick);
    if (r < 0 || (r === 0 && resetOf(e) > resetOf(pick))) pick = e;
  }
  return describe(pick, true, 0, false);
}

function refusal(
  evaluated: readonly Evaluated[],
  cost: number,
  now: number,
  contended: boolean,
): RateDecision {
  // Most restrictive: the longest wait until `cost` tokens, so Retry-After covers every bucket.
  // A bucket stamped ahead of our clock (skew) refills only from its stamp.
  let pick = evaluated[0] as Evaluated;
  let wait = -1;
  for (const e of evaluated) {
    const w = e.at - now + msToGain(cost - e.tokens, e.bucket.rule);
    if (w > wait || (w === wait && remainingOf(e) < remainingOf(pick))) {
      pick = e;
      wait = w;
    }
  }
  return describe(pick, false, Math.max(1, Math.ceil(wait / 1000)), contended);
}

function describe(
  e: Evaluated,
  allowed: boolean,
  retryAfterSeconds: number,
  contended: boolean,
): RateDecision {
  return {
    allowed,
    limit: e.bucket.rule.limit,
    remaining: remainingOf(e),
    resetAt: new Date(resetOf(e)),
    retryAfterSeconds,
    bucket: e.bucket.id,
    rule: e.bucket.rule,
    contended,
  };
}
