/**
 * Where bcrypt actually runs: native code (npm `bcrypt`: OpenBSD's C
 * implementation, the one Python's `bcrypt` wraps, as an N-API addon whose
 * prebuilt binaries ship in the package) on Deno's blocking thread pool, or
 * bcryptjs in worker threads, the fallback where native code cannot load.
 * `password_hasher.ts` picks one.
 */
import { compareSync, genSaltSync, hashSync } from "bcryptjs";
import type { BcryptJob, BcryptResult } from "./bcrypt_worker.ts";

/** The bcrypt implementations Bulwark can run. */
export type BcryptEngineName = "native" | "js";

/** A job for an engine. */
export type EngineJob = BcryptJob extends infer J ? J extends { id: number } ? Omit<J, "id"> : never
  : never;

/** Runs bcrypt jobs off the event loop. */
export interface BcryptEngine {
  readonly name: BcryptEngineName;
  submit(job: EngineJob): Promise<string | boolean>;
  close(): void;
}

/** The functions of npm `bcrypt` Bulwark calls. */
interface NativeBcrypt {
  hash(input: string, rounds: number): Promise<string>;
  compare(input: string, hash: string): Promise<boolean>;
}

/**
 * Loads npm `bcrypt`, the C implementation (`@node-rs/bcrypt`, in Rust, cost
 * 10% more CPU per hash here, and its 2.0.0 does not resolve from npm in
 * Deno). Its async `hash`/`compare` run on Deno's blocking thread pool (N-API
 * async work is tokio's `spawn_blocking`, not libuv: `UV_THREADPOOL_SIZE`
 * means nothing here), so the event loop never waits for a hash. Passwords
 * with NUL bytes hash whole (length-aware, as bcryptjs). That pool
 * grows to hundreds of threads, so `concurrency` jobs run at once and the
 * rest queue here, first come first served: more threads than cores would
 * only make every login slower, not more logins finish.
 *
 * @throws {Error} when the native module cannot load (no `--allow-ffi`, no
 *   binary for this platform, `deno compile --target` for another one)
 */
export async function loadNativeEngine(concurrency: number): Promise<BcryptEngine> {
  const module: Partial<NativeBcrypt> & { default?: NativeBcrypt } = await import("bcrypt");
  const native = module.default ?? module as NativeBcrypt;
  if (typeof native.hash !== "function" || typeof native.compare !== "function") {
    throw new TypeError("Cannot load native bcrypt: unexpected module shape");
  }
  const limit = createLimiter(concurrency);
  return {
    name: "native",
    submit(job) {
      return limit(async () => {
        if (job.op === "hash") return await native.hash(job.password, job.rounds);
        // `$2y$` (crypt_blowfish, PHP) and `$2b$` name the same corrected algorithm;
        // OpenBSD's code knows only `$2a$`/`$2b$`, so the label is changed, not the hash.
        const hash = job.hash.startsWith("$2y$") ? `$2b$${job.hash.slice(4)}` : job.hash;
        return await native.compare(job.password, hash);
      });
    },
    close() {
      limit.close();
    },
  };
}

/** bcryptjs on the calling thread: blocks the event loop, for tests at low cost only. */
export function createInlineEngine(): BcryptEngine {
  return {
    name: "js",
    submit(job) {
      return Promise.resolve(runJs(job));
    },
    close() {},
  };
}

/** Runs one job with bcryptjs, synchronously. */
export function runJs(job: EngineJob): string | boolean {
  return job.op === "hash"
    ? hashSync(job.password, genSaltSync(job.rounds))
    : compareSync(job.password, job.hash);
}

type Limited = (<T>(task: () => Promise<T>) => Promise<T>) & { close(): void };

/** Runs at most `size` tasks at once; the others wait in arrival order. */
function createLimiter(size: number): Limited {
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`Cannot create bcrypt engine: concurrency must be >= 1, got ${size}`);
  }
  let running = 0;
  let closed = false;
  const waiting: Array<() => void> = [];
  const run = async <T>(task: () => Promise<T>): Promise<T> => {
    if (closed) throw new Error("Cannot hash: the hasher is closed");
    if (running >= size) {
      const { promise, resolve } = Promise.withResolvers<void>();
      waiting.push(resolve);
      await promise;
      if (closed) throw new Error("The hasher was closed");
    }
    running++;
    try {
      return await task();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
  return Object.assign(run, {
    close() {
      closed = true;
      for (const wake of waiting.splice(0)) wake();
    },
  });
}

interface Pending {
  resolve(value: string | boolean): void;
  reject(error: Error): void;
}

/** bcryptjs in `size` worker threads; jobs queue when every worker is busy. */
export function createWorkerEngine(size: number): BcryptEngine {
  const url = new URL("./bcrypt_worker.ts", import.meta.url);
  const idle: Worker[] = [];
  const queue: BcryptJob[] = [];
  const pending = new Map<number, Pending>();
  const busy = new Map<Worker, number>();
  let spawned = 0;
  let nextId = 1;
  let closed = false;

  function dispatch(): void {
    // Workers start on first use, not at start-up: each is a V8 isolate (~10 MiB
    // and tens of ms), and a process that serves no login never needs one.
    while (queue.length > 0 && idle.length === 0 && spawned < size) spawn(spawned++);
    while (idle.length > 0 && queue.length > 0) {
      const worker = idle.pop()!;
      const job = queue.shift()!;
      busy.set(worker, job.id);
      worker.postMessage(job);
    }
  }

  function spawn(i: number): void {
    const worker = new Worker(url, { type: "module", name: `bcrypt-${i}` });
    worker.onmessage = (event: MessageEvent<BcryptResult>) => {
      const result = event.data;
      busy.delete(worker);
      idle.push(worker);
      const waiter = pending.get(result.id);
      pending.delete(result.id);
      if ("error" in result) waiter?.reject(new Error(`bcrypt worker failed: ${result.error}`));
      else waiter?.resolve(result.value);
      dispatch();
    };
    worker.onerror = (event) => {
      event.preventDefault();
      const id = busy.get(worker);
      busy.delete(worker);
      if (id !== undefined) {
        pending.get(id)?.reject(new Error(`bcrypt worker crashed: ${event.message}`));
        pending.delete(id);
      }
      // Replace the dead worker so the pool never shrinks.
      worker.terminate();
      const at = idle.indexOf(worker);
      if (at >= 0) idle.splice(at, 1);
      if (!closed) {
        spawn(i);
        dispatch();
      }
    };
    idle.push(worker);
  }

  return {
    name: "js",
    submit(job) {
      if (closed) return Promise.reject(new Error("Cannot hash: the hasher is closed"));
      const id = nextId++;
      const { promise, resolve, reject } = Promise.withResolvers<string | boolean>();
      pending.set(id, { resolve, reject });
      queue.push({ ...job, id } as BcryptJob);
      dispatch();
      return promise;
    },
    close() {
      closed = true;
      for (const worker of [...idle, ...busy.keys()]) worker.terminate();
      for (const waiter of pending.values()) waiter.reject(new Error("The hasher was closed"));
      pending.clear();
    },
  };
}
