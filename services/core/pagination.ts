/**
 * Cursor pagination over one KV key range. A cursor is the tail of the last key
 * a page consumed (after the index's fixed prefix), base64url-encoded JSON: opaque
 * to clients, checked on the way back in, and always re-anchored under the same
 * prefix, so a forged cursor can move within the caller's own range and nowhere else.
 */
import { ValidationError } from "./errors.ts";

/** One page of a listing. */
export interface Page<T> {
  items: T[];
  /** Pass back as `cursor` for the next page; null when there is none. */
  next_cursor: string | null;
}

/** Options of {@linkcode scanPage}. */
export interface ScanOptions<V, T> {
  /** The index prefix; every key read lies under it. */
  prefix: Deno.KvKey;
  /** Narrower bounds inside `prefix` (full keys; `end` exclusive). @default the whole prefix */
  range?: { start?: Deno.KvKey; end?: Deno.KvKey };
  /** How many key parts follow `prefix` in this index (the cursor's length). */
  tailLength: number;
  /** Newest (highest key) first. @default false */
  reverse?: boolean;
  /** From a previous page, or undefined for the first page. */
  cursor?: string | undefined;
  /** Items per page (1-100 at the API). */
  limit: number;
  /**
   * Most index entries one page may read; a page that reaches it ends early with
   * a cursor, so a selective filter never turns into an unbounded scan. @default 1000
   */
  maxScan?: number;
  /** Turns index entries into items, in order; null skips an entry (filtered, or gone). */
  resolve: (entries: Deno.KvEntry<V>[]) => Promise<Array<T | null>>;
}

const MAX_CURSOR_CHARS = 1024;

/** Encodes a key tail as an opaque cursor. */
export function encodeCursor(tail: readonly string[]): string {
  const bytes = new TextEncoder().encode(JSON.stringify(tail));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/**
 * Decodes a cursor into a key tail of `length` strings.
 *
 * @throws {ValidationError} for anything that is not such a cursor
 */
export function decodeCursor(cursor: string, length: number): string[] {
  const invalid = () =>
    new ValidationError("Request validation failed", {
      errors: [{ path: "cursor", message: "Invalid cursor" }],
    });
  if (cursor.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]*$/.test(cursor)) throw invalid();
  let parsed: unknown;
  try {
    const binary = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    parsed = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(
        Uint8Array.from(binary, (ch) => ch.charCodeAt(0)),
      ),
    );
  } catch (error) {
    // Bad base64 (DOMException), bad UTF-8 (TypeError) or bad JSON (SyntaxError): all one answer.
    if (
      error instanceof DOMException || error instanceof TypeError || error instanceof SyntaxError
    ) {
      throw invalid();
    }
    throw error;
  }
  if (
    !Array.isArray(parsed) || parsed.length !== length ||
    !parsed.every((p) => typeof p === "string" && p.length <= 512)
  ) {
    throw invalid();
  }
  return parsed as string[];
}

/** Orders two KV keys of strings as the store does (UTF-8 bytes; a prefix sorts first). */
export function compareKeys(a: Deno.KvKey, b: Deno.KvKey): number {
  const encoder = new TextEncoder();
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = encoder.encode(String(a[i]));
    const y = encoder.encode(String(b[i]));
    for (let j = 0; j < Math.min(x.length, y.length); j++) {
      if (x[j] !== y[j]) return x[j]! - y[j]!;
    }
    if (x.length !== y.length) return x.length - y.length;
  }
  return a.length - b.length;
}

/** The smallest key after `key` among keys of its length whose last part is a string. */
function successor(key: Deno.KvKey): Deno.KvKey {
  return [...key.slice(0, -1), `${String(key.at(-1))}\0`];
}

/**
 * Reads one page: walks the range in order, resolving index entries into items
 * until `limit` items or `maxScan` entries, and returns the cursor of the last
 * entry consumed when more may follow.
 */
export async function scanPage<V, T>(kv: Deno.Kv, options: ScanOptions<V, T>): Promise<Page<T>> {
  const { prefix, limit } = options;
  const maxScan = options.maxScan ?? 1000;
  const reverse = options.reverse ?? false;
  let lower = options.range?.start;
  let upper = options.range?.end;
  if (options.cursor !== undefined) {
    const at = [...prefix, ...decodeCursor(options.cursor, options.tailLength)];
    if (reverse) upper = upper === undefined || compareKeys(at, upper) < 0 ? at : upper;
    else {lower = lower === undefined || compareKeys(successor(at), lower) > 0
        ? successor(at)
        : lower;}
  }
  if (lower !== undefined && upper !== undefined && compareKeys(lower, upper) >= 0) {
    return { items: [], next_cursor: null };
  }
  const selector: Deno.KvListSelector = lower !== undefined && upper !== undefined
    ? { start: lower, end: upper }
    : lower !== undefined
    ? { prefix, start: lower }
    : upper !== undefined
    ? { prefix, end: upper }
    : { prefix };
  const iterator = kv.list<V>(selector, { reverse, batchSize: Math.min(500, limit * 2 + 1) });
  const items: T[] = [];
  let scanned = 0;
  let last: Deno.KvKey | null = null;
  let pending: Deno.KvEntry<V>[] = [];
  const cursorOf = (key: Deno.KvKey) => encodeCursor(key.slice(prefix.length).map(String));
  for await (const entry of iterator) {
    if (items.length >= limit || scanned >= maxScan) {
      // Something is left after a full page (or the scan budget): hand out a cursor.
      return { items, next_cursor: last === null ? null : cursorOf(last) };
    }
    pending.push(entry);
    scanned++;
    // Resolve in small groups: enough to fill the page, never far past it.
    if (pending.length >= Math.min(10, limit - items.length) || scanned >= maxScan) {
      const group = pending;
      pending = [];
      const resolved = await options.resolve(group);
      for (let i = 0; i < group.length; i++) {
        if (items.length >= limit) {
          // The rest of this group is unread: the cursor stays on the last item taken.
          return { items, next_cursor: last === null ? null : cursorOf(last) };
        }
        last = group[i]!.key;
        const item = resolved[i];
        if (item !== null && item !== undefined) items.push(item);
      }
    }
  }
  if (pending.length > 0) {
    const resolved = await options.resolve(pending);
    for (let i = 0; i < pending.length; i++) {
      if (items.length >= limit) return { items, next_cursor: cursorOf(last!) };
      last = pending[i]!.key;
      const item = resolved[i];
      if (item !== null && item !== undefined) items.push(item);
    }
  }
  return { items, next_cursor: null };
}
