import type { RevocationFeed } from "../core/revocation_feed.ts";

/** Options of {@linkcode createCredentialView}. */
export interface CredentialViewOptions {
  /** Most entries held; the least recently used go first. @default 50000 */
  maxEntries?: number;
  /** An entry older than this is read again, whatever the feed says. @default 60000 */
  maxAgeMs?: number;
}

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
      // performance.now(): the age of local memory, independent of the injected clock.
      if (performance.now() - entry.at > maxAgeMs) {
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
      drop(key);
      held.set(key, { value, tags, at: performance.now() });
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
