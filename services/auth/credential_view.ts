import type { RevocationFeed } from "../core/revocation_feed.ts";

/** Options of {@linkcode createCredentialView}. */
export interface CredentialViewOptions {
  /** Most entries held; the least recently used go first. @default 50000 */
  maxEntries?: number;
  /** An entry older than this is read again, whatever the feed says. @default 60000 */
  maxAgeMs?: number;
  /** Monotonic milliseconds for entry ages (local memory, not the injected clock). @default performance.now */
  now?: () => number;
}

/** Expired entries dropped, at most, each time one is remembered (amortised pruning). */
const PRUNE_PER_REMEMBER = 4;

/**
 * The credentials this instance recently checked and found good (an access
 * token's session and account, an API key and its owner), held in bounded
 * memory so the common request needs no store round trip. Only good states are
 * held: a revoked credential is never served from here, it is simply read
 * again. Every revocation — this instance's at once, others' through the
 * {@linkcode RevocationFeed} — drops what it touches (by tag: `user:<id>`,
 * `session:<id>`, `jti:<id>`, `api_key:<id>`), and nothing is served while
 * the feed is stale.
 */
export interface CredentialView {
  /** A good state remembered under `key`, or undefined (also whenever the feed is stale). */
  get<T>(key: string): T | undefined;
  /** The counter of invalidations: read it before a store read, pass it to `remember`. */
  generation(): number;
  /**
   * Remembers a good state read from the store, unless anything was revoked
   * since `generation` was read (the read may predate that revocation).
   */
  remember(key: string, value: unknown, tags: readonly string[], generation: number): void;
  /** How many entries are held (bounded by `maxEntries`). */
  size(): number;
}

interface Held {
  value: unknown;
  tags: readonly string[];
  at: number;
}

/** Creates the view and subscribes it to `feed`. */
export function createCredentialView(
  feed: RevocationFeed,
  options: CredentialViewOptions = {},
): CredentialView {
  const maxEntries = options.maxEntries ?? 50_000;
  const maxAgeMs = options.maxAgeMs ?? 60_000;
  const now = options.now ?? (() => performance.now());
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new RangeError("Cannot create credential view: maxEntries must be a positive integer");
  }
  // Map iteration order is insertion order: re-inserting on use makes it an LRU.
  const held = new Map<string, Held>();
  const byTag = new Map<string, Set<string>>();
  let generation = 0;

  function drop(key: string): void {
    const entry = held.get(key);
    if (entry === undefined) return;
    held.delete(key);
    for (const tag of entry.tags) {
      const keys = byTag.get(tag);
      keys?.delete(key);
      if (keys?.size === 0) byTag.delete(tag);
    }
  }

  feed.subscribe((revoked) => {
    generation++;
    const tag = `${revoked.kind}:${revoked.id}`;
    for (const key of [...(byTag.get(tag) ?? [])]) drop(key);
  });

  return {
    get<T>(key: string): T | undefined {
      if (!feed.fresh()) return undefined;
      const entry = held.get(key);
      if (entry === undefined) return undefined;
      if (now() - entry.at > maxAgeMs) {
        drop(key);
        return undefined;
      }
      held.delete(key);
      held.set(key, entry);
      return entry.value as T;
    },
    generation: () => generation,
    remember(key, value, tags, seen) {
      if (seen !== generation || !feed.fresh()) return;
      const at = now();
      // The least recently used come first: a few of them past their age go with every
      // new entry, so dead entries do not pile up to the bound on a busy instance.
      for (let i = 0; i < PRUNE_PER_REMEMBER; i++) {
        const oldest = held.entries().next().value;
        if (oldest === undefined || at - oldest[1].at <= maxAgeMs) break;
        drop(oldest[0]);
      }
      drop(key);
      held.set(key, { value, tags, at });
      for (const tag of tags) {
        let keys = byTag.get(tag);
        if (keys === undefined) byTag.set(tag, keys = new Set());
        keys.add(key);
      }
      while (held.size > maxEntries) drop(held.keys().next().value!);
    },
    size: () => held.size,
  };
}
