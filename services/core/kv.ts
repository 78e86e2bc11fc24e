/**
 * Deno KV helpers shared by every service: one retry policy for
 * read-modify-write commits, chunked `getMany`, index listing and `expireIn`.
 */

/** Returned by an attempt of {@linkcode retryOnConflict} whose commit lost a race. */
export const RETRY: unique symbol = Symbol("retry");

/** Options of {@linkcode retryOnConflict}. */
export interface RetryOptions {
  /** Attempts before giving up. @default 8 */
  attempts?: number;
  /** Longest jittered pause (ms) between attempts after a busy store. @default 16 */
  maxPauseMs?: number;
  /** The error thrown when every attempt lost. */
  exhausted: () => Error;
}

/**
 * True for the transient error a second handle on one SQLite file gets while
 * another holds the write lock ("database is locked"); nothing was applied.
 */
export function isStoreBusy(error: unknown): boolean {
  // Deno 2.x reports SQLITE_BUSY as a TypeError; only its message tells it apart.
  return error instanceof Deno.errors.Busy ||
    (error instanceof TypeError && error.message.includes("database is locked"));
}

/**
 * Commits `op`; returns the new versionstamp, or null when a check failed or the
 * store was busy (after a short jittered pause that lets the other writer
 * finish), so the caller reads again and retries like a lost race.
 */
export async function tryCommit(
  op: Deno.AtomicOperation,
  attempt = 0,
  maxPauseMs = 16,
): Promise<string | null> {
  try {
    const res = await op.commit();
    return res.ok ? res.versionstamp : null;
  } catch (error) {
    if (!isStoreBusy(error)) throw error;
    // deno-lint-ignore bulwark-security/no-math-random -- retry jitter, not a secret or an id
    const pauseMs = Math.random() * Math.min(maxPauseMs, 2 ** attempt);
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    return null;
  }
}

/**
 * Runs a read-modify-write `attempt` until it returns something other than
 * {@linkcode RETRY} (a versionstamp check lost, or — through
 * {@linkcode tryCommit} — a busy store), at most `attempts` times.
 *
 * @throws the error `exhausted()` makes when every attempt lost
 */
export async function retryOnConflict<T>(
  attempt: (n: number) => Promise<T | typeof RETRY>,
  options: RetryOptions,
): Promise<T> {
  const attempts = options.attempts ?? 8;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new RangeError("Cannot retry: attempts must be a positive integer");
  }
  for (let n = 0; n < attempts; n++) {
    const result = await attempt(n);
    if (result !== RETRY) return result as T;
  }
  throw options.exhausted();
}

/** Commits `op` inside a {@linkcode retryOnConflict} attempt: RETRY when it lost. */
export async function commitOrRetry(
  op: Deno.AtomicOperation,
  attempt: number,
): Promise<string | typeof RETRY> {
  return (await tryCommit(op, attempt)) ?? RETRY;
}

/** Most keys one `Deno.Kv.getMany` call reads. */
const GET_MANY_LIMIT = 10;

/** `getMany` over any number of keys, ten at a time (the store's limit). */
export async function getManyChunked<T>(
  kv: Deno.Kv,
  keys: readonly Deno.KvKey[],
): Promise<Deno.KvEntryMaybe<T>[]> {
  const out: Deno.KvEntryMaybe<T>[] = [];
  for (let i = 0; i < keys.length; i += GET_MANY_LIMIT) {
    out.push(...await kv.getMany<T[]>(keys.slice(i, i + GET_MANY_LIMIT)));
  }
  return out;
}

/**
 * Lists a one-to-many index whose values are primary ids, then reads the
 * records they point to; ids whose record is gone are skipped.
 */
export async function listByIndex<T>(
  kv: Deno.Kv,
  prefix: Deno.KvKey,
  recordKey: (id: string) => Deno.KvKey,
): Promise<Deno.KvEntry<T>[]> {
  const ids: string[] = [];
  for await (const entry of kv.list<string>({ prefix })) ids.push(entry.value);
  const entries = await getManyChunked<T>(kv, ids.map(recordKey));
  return entries.filter((e): e is Deno.KvEntry<T> => e.value !== null);
}

/**
 * `expireIn` for a record that carries its own expiry: only cleanup (values
 * are judged by their stored time), so it stays positive.
 */
export function expireInUntil(expiresAt: string | Date, now: Date): number {
  return Math.max(1000, new Date(expiresAt).getTime() - now.getTime());
}

/** Options of {@linkcode withBusyRetry}. */
export interface BusyRetryOptions {
  /** Attempts of one operation before the busy error is let through. @default 12 */
  attempts?: number;
  /** Longest jittered pause between two attempts (ms). @default 100 */
  maxPauseMs?: number;
}

/**
 * The one retry policy for a store shared by several processes: every write
 * (`atomic().commit()`, `set`, `delete`) and point read of the returned store
 * is retried, with jittered exponential backoff and a bound, while SQLite
 * reports "database is locked" (another process holds the write lock of an
 * embedded file; nothing was applied). So no request answers 500 because
 * another process is writing; version conflicts stay the callers' to handle
 * (`retryOnConflict`). Harmless where the store never reports busy (KV
 * Connect, Deploy, `:memory:`).
 */
export function withBusyRetry(kv: Deno.Kv, options: BusyRetryOptions = {}): Deno.Kv {
  const attempts = options.attempts ?? 12;
  const maxPauseMs = options.maxPauseMs ?? 100;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new RangeError("Cannot retry a busy store: attempts must be a positive integer");
  }
  async function retrying<T>(run: () => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      try {
        return await run();
      } catch (error) {
        if (!isStoreBusy(error) || attempt >= attempts) throw error;
        // deno-lint-ignore bulwark-security/no-math-random -- retry jitter, not a secret or an id
        const pauseMs = Math.random() * Math.min(maxPauseMs, 2 ** attempt);
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    }
  }
  function atomic(op: Deno.AtomicOperation): Deno.AtomicOperation {
    const commit = op.commit.bind(op);
    // Properties a caller assigns (an instrumented commit) live on the wrapper, not the operation.
    const assigned = new Map<PropertyKey, unknown>();
    const wrapped: Deno.AtomicOperation = new Proxy(op, {
      set(_target, name, value) {
        assigned.set(name, value);
        return true;
      },
      get(target, name) {
        if (assigned.has(name)) return assigned.get(name);
        const value = Reflect.get(target, name, target);
        if (name === "commit") return () => retrying(commit);
        if (typeof value !== "function") return value;
        // Builder methods return the operation itself: hand back the wrapper instead.
        return (...args: unknown[]) => {
          const result = value.apply(target, args);
          return result === target ? wrapped : result;
        };
      },
    });
    return wrapped;
  }
  const retried = new Set<PropertyKey>(["get", "getMany", "set", "delete"]);
  return new Proxy(kv, {
    get(target, name) {
      const value = Reflect.get(target, name, target);
      if (name === "atomic") return () => atomic(target.atomic());
      if (typeof value !== "function") return value;
      if (retried.has(name)) {
        return (...args: unknown[]) => retrying(() => value.apply(target, args));
      }
      return value.bind(target);
    },
  });
}
