/**
 * The in-memory state of one reconciled bucket and the arithmetic on it, for
 * `createLocalRateLimiter` (local_rate_limiter.ts, which explains the design).
 */
import type { BucketId, RateDecision, RateLimit } from "./rate_limiter.ts";

/** Shortest slot of the shared counters: twice the clock skew instances may have (5 s). */
export const MIN_SLOT_MS = 10_000;
/** Tolerance for floating-point refill arithmetic, in tokens. */
export const EPSILON = 1e-9;

/** One bucket as an instance holds it. */
export interface Bucket {
  readonly id: BucketId;
  readonly rule: RateLimit;
  readonly slotMs: number;
  /** Slots, back from the current one, that cover a full refill. */
  readonly spanSlots: number;
  /** May be negative: others' consumption learnt late is a debt. */
  tokens: number;
  at: number;
  /** Per slot start: what this instance has published into it. */
  readonly mine: Map<number, number>;
  /** Per slot start: the others' part of the counter when last read. */
  readonly seen: Map<number, number>;
  /** Clock time before which every admission was published and after which it was read. */
  syncedAt: number;
  /** Used since the last tick started: read back on the next one. */
  dirty: boolean;
}

/** A bucket not read from the store yet. */
export function emptyBucket(id: BucketId, rule: RateLimit): Bucket {
  const { slotMs, spanSlots } = slotting(rule);
  return {
    id,
    rule,
    slotMs,
    spanSlots,
    tokens: 0,
    at: 0,
    mine: new Map(),
    seen: new Map(),
    syncedAt: Number.NEGATIVE_INFINITY,
    dirty: false,
  };
}

/** The map key of a bucket. */
export function tagOf(id: BucketId): string {
  // Names are lower snake_case, so the first space separates name and key.
  return `${id.name} ${id.key}`;
}

/** Slot length of a rule's shared counters and how many slots cover a full refill. */
export function slotting(rule: RateLimit): { slotMs: number; spanSlots: number } {
  const refillMs = rule.burst * rule.windowMs / rule.limit;
  const slotMs = Math.max(MIN_SLOT_MS, Math.ceil(refillMs / 8));
  return { slotMs, spanSlots: Math.ceil(refillMs / slotMs) };
}

/** How far back a rule's slots are read: older ones may be deleted. */
export function horizonOf(rule: RateLimit): number {
  const { slotMs, spanSlots } = slotting(rule);
  return (spanSlots + 2) * slotMs;
}

/** Start of the slot holding `now`. */
export function slotOf(now: number, slotMs: number): number {
  return Math.floor(now / slotMs) * slotMs;
}

/** The slots a tick reads: the current one and its neighbours (clock skew < one slot). */
export function recentSlots(b: Bucket, now: number): number[] {
  const current = slotOf(now, b.slotMs);
  return [current - b.slotMs, current, current + b.slotMs];
}

/** A shared counter's value; 0 when absent. */
export function counterOf(value: unknown): number {
  return value instanceof Deno.KvU64 ? Number(value.value) : 0;
}

/**
 * Tokens a bucket can hold at most, given the consumption per slot: for every slot k,
 * at most B plus the refill since k ended, minus everything counted from k on. Crediting
 * refill only from a slot's end errs towards fewer tokens (by < r × slot), never more.
 */
export function estimate(
  rule: RateLimit,
  span: readonly number[],
  totals: readonly number[],
  slotMs: number,
  now: number,
): number {
  let best = rule.burst;
  let counted = 0;
  for (let i = span.length - 1; i >= 0; i--) {
    counted += totals[i]!;
    const credit = Math.max(0, now - (span[i]! + slotMs)) * rule.limit / rule.windowMs;
    best = Math.min(best, rule.burst + credit - counted);
  }
  // Below zero when the counters hold more than one bucket could have admitted (several
  // instances over-admitted): a debt, paid back by refill like a deduction.
  return best;
}

/** Adds the refill since `b.at`, up to the burst. */
export function refill(b: Bucket, now: number): void {
  if (now <= b.at) return;
  b.tokens = Math.min(b.rule.burst, b.tokens + (now - b.at) * b.rule.limit / b.rule.windowMs);
  b.at = now;
}

/** The decision a bucket gives, in the exact limiter's shape (`X-RateLimit-*`, `Retry-After`). */
export function describe(b: Bucket, now: number, cost: number, allowed: boolean): RateDecision {
  const perToken = b.rule.windowMs / b.rule.limit;
  const wait = b.at - now + Math.max(0, cost - b.tokens) * perToken;
  return {
    allowed,
    limit: b.rule.limit,
    remaining: Math.max(0, Math.floor(b.tokens + EPSILON)),
    resetAt: new Date(b.at + Math.ceil(Math.max(0, b.rule.burst - b.tokens) * perToken)),
    retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil(wait / 1000)),
    bucket: b.id,
    rule: b.rule,
    contended: false,
  };
}
