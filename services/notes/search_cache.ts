/**
 * An in-process cache of each owner's note search texts, keyed by the
 * versionstamp of the owner's note counter — which every create, update and
 * delete commits — so a search reads one KV entry to know its copy is current
 * (strongly consistent, across instances sharing a store) instead of every note.
 *
 * @module
 */

/** One note as the search sees it. */
export interface SearchEntry {
  readonly sortKey: string;
  readonly id: string;
  /** Lowercased title and body text. */
  readonly text: string;
}

/** Per-owner search texts, newest first. */
export interface NoteSearchCache {
  /**
   * The owner's entries as of `version` (the counter's versionstamp); `load` reads them
   * from the store, newest first, when the cached copy is missing or older.
   */
  entries(
    ownerId: string,
    version: string | null,
    load: () => Promise<SearchEntry[]>,
  ): Promise<readonly SearchEntry[]>;
}

/** Options of {@linkcode createNoteSearchCache}. */
export interface NoteSearchCacheOptions {
  /** Characters of search text kept in memory, over every owner. @default 16_000_000 */
  maxChars?: number;
}

/** Creates an empty cache; each service instance owns one. */
export function createNoteSearchCache(options: NoteSearchCacheOptions = {}): NoteSearchCache {
  const maxChars = options.maxChars ?? 16_000_000;
  // Map order is insertion order: re-inserting on use makes it least-recently-used first.
  const cache = new Map<string, { version: string; entries: SearchEntry[]; chars: number }>();
  let total = 0;

  function evict(ownerId: string): void {
    const old = cache.get(ownerId);
    if (old === undefined) return;
    cache.delete(ownerId);
    total -= old.chars;
  }

  return {
    async entries(ownerId, version, load) {
      const hit = cache.get(ownerId);
      if (version !== null && hit !== undefined && hit.version === version) {
        cache.delete(ownerId);
        cache.set(ownerId, hit);
        return hit.entries;
      }
      // The counter was read before `load` lists the notes, so the list is at least as new
      // as `version`: a newer list under an older tag only costs one more reload.
      const entries = await load();
      evict(ownerId);
      const chars = entries.reduce((sum, e) => sum + e.text.length, 0);
      if (version !== null && chars <= maxChars) {
        cache.set(ownerId, { version, entries, chars });
        total += chars;
        for (const oldest of cache.keys()) {
          if (total <= maxChars) break;
          evict(oldest);
        }
      }
      return entries;
    },
  };
}
