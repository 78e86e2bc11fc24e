import type { Clock } from "./clock.ts";
import { randomId } from "./crypto.ts";
import { revocationEntryKey, revocationFeedStart, revocationHeadKey } from "./kv_keys.ts";
import type { Logger } from "./logger.ts";

/** What a revocation made untrustworthy: drop every cached view of it. */
export type Revoked =
  | { kind: "jti"; id: string }
  | { kind: "session"; id: string }
  | { kind: "user"; id: string }
  | { kind: "api_key"; id: string };

/**
 * A KV feed of revocations, so every instance's in-memory view of credentials
 * follows changes made anywhere. Writers add entries to the very commit that
 * makes a revocation true ({@linkcode RevocationFeed.append}); each instance
 * follows the feed head with a short poll (one small read) — and `kv.watch`
 * where the store pushes other processes' writes — and drops what was revoked
 * from its view. While the feed cannot be read, {@linkcode RevocationFeed.fresh}
 * is false and callers read the store instead of trusting memory (fail safe).
 */
export interface RevocationFeed {
  /** Adds `entries` (and a new head) to `op`: they become visible exactly when it commits. */
  append(op: Deno.AtomicOperation, entries: readonly Revoked[]): Deno.AtomicOperation;
  /** Registers what to do with each revocation: this instance's writes and everyone else's. */
  subscribe(listener: (entry: Revoked) => void): void;
  /** Applies this instance's own revocations at once, after their commit. */
  applyLocal(entries: readonly Revoked[]): void;
  /** True while the view is known to be at most `maxLagMs` behind the store. */
  fresh(): boolean;
  /** Reads the feed once (the poll's step; tests call it directly). */
  sync(): Promise<void>;
  /** Starts following: polling, plus `kv.watch` where the store pushes. */
  start(options: { watch: boolean }): void;
  /** Stops every timer and watch. */
  close(): Promise<void>;
  /** How many applied entry ids are remembered (bounded by `maxSeen`). */
  seenCount(): number;
}

/** Dependencies of {@linkcode createRevocationFeed}. */
export interface RevocationFeedDeps {
  kv: Deno.Kv;
  clock: Clock;
  logger: Logger;
  /** Poll interval of the feed head. @default 200 */
  pollMs?: number;
  /** Older views are not trusted: reads go to the store. @default 1000 */
  maxLagMs?: number;
  /** Applied entry ids remembered at most, oldest forgotten first. @default 50000 */
  maxSeen?: number;
}

interface FeedEntry {
  entries: Revoked[];
  at_ms: number;
}

/** Entries are kept this long: far longer than any instance may lag before it stops trusting. */
const ENTRY_TTL_MS = 10 * 60_000;
/**
 * Writers' clocks may disagree: every read looks this far back and skips entries
 * already seen. A writer more than this behind is still bounded by the view's own
 * maximum age.
 */
const LOOKBACK_MS = 60_000;

/** Creates the feed of one runtime. */
export function createRevocationFeed(deps: RevocationFeedDeps): RevocationFeed {
  const { kv, clock, logger } = deps;
  const pollMs = deps.pollMs ?? 200;
  const maxLagMs = deps.maxLagMs ?? 1000;
  // Ids of entries already applied, remembered for the look-back window.
  const maxSeen = deps.maxSeen ?? 50_000;
  const listeners: Array<(entry: Revoked) => void> = [];
  const seen = new Map<string, number>();
  let cursorMs = clock.now().getTime();
  let headStamp: string | null | undefined;
  // performance.now(): a monotonic local measure of the view's age, whatever the clock says.
  let lastSync = Number.NEGATIVE_INFINITY;
  let timer: ReturnType<typeof setInterval> | undefined;
  let watcher: ReadableStreamDefaultReader<unknown> | undefined;
  let syncing: Promise<void> | null = null;

  function publish(entries: readonly Revoked[]): void {
    for (const entry of entries) for (const listener of listeners) listener(entry);
  }

  async function readFeed(): Promise<void> {
    const head = await kv.get(revocationHeadKey());
    const checkedAt = performance.now();
    if (head.versionstamp !== headStamp) {
      const from = cursorMs - LOOKBACK_MS;
      for await (
        const e of kv.list<FeedEntry>({
          start: revocationFeedStart(from),
          end: revocationFeedStart(Number.MAX_SAFE_INTEGER),
        })
      ) {
        const id = String(e.key[2]);
        if (seen.has(id)) continue;
        seen.set(id, e.value.at_ms);
        publish(e.value.entries);
        // Never past this instance's own time: a writer whose clock runs ahead must not
        // make the next reads skip what correctly clocked writers append meanwhile.
        cursorMs = Math.max(cursorMs, Math.min(e.value.at_ms, clock.now().getTime()));
      }
      headStamp = head.versionstamp;
      for (const [id, at] of seen) {
        if (seen.size <= maxSeen && at >= cursorMs - 2 * LOOKBACK_MS) break;
        seen.delete(id);
      }
    }
    lastSync = checkedAt;
  }

  const feed: RevocationFeed = {
    append(op, entries) {
      const at = clock.now().getTime();
      const id = randomId();
      const entry: FeedEntry = { entries: [...entries], at_ms: at };
      return op
        .set(revocationEntryKey(at, id), entry, { expireIn: ENTRY_TTL_MS })
        .set(revocationHeadKey(), { id, at_ms: at });
    },
    subscribe(listener) {
      listeners.push(listener);
    },
    applyLocal(entries) {
      publish(entries);
    },
    fresh() {
      return performance.now() - lastSync <= maxLagMs;
    },
    sync() {
      syncing ??= readFeed().finally(() => {
        syncing = null;
      });
      return syncing;
    },
    start(options) {
      if (timer !== undefined) return;
      const poll = () =>
        feed.sync().catch((error) => {
          // The view goes stale and callers fall back to the store; say why once per failure.
          logger.warn("revocation feed unreadable; reading credentials from the store", { error });
        });
      timer = setInterval(poll, pollMs);
      void poll();
      if (options.watch) {
        // Deploy and KV Connect push other instances' writes: sync as soon as the head moves.
        watcher = kv.watch([revocationHeadKey()]).getReader();
        (async () => {
          for (;;) {
            const { done } = await watcher!.read();
            if (done) return;
            await poll();
          }
        })().catch((error) => logger.warn("revocation feed watch ended", { error }));
      }
    },
    async close() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await watcher?.cancel();
      watcher = undefined;
      // A failed sync was already logged by the poll that started it.
      await syncing?.then(() => undefined, () => undefined);
    },
    seenCount: () => seen.size,
  };
  return feed;
}
