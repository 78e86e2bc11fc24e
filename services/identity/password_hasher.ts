import { compareSync, genSaltSync, getRounds, hashSync } from "bcryptjs";
import type { BcryptJob, BcryptResult } from "./bcrypt_worker.ts";

/** Hashes and verifies passwords; implementations never block the event loop. */
export interface PasswordHasher {
  /** Returns a `$2b$` bcrypt hash of the NFKC-normalised password. */
  hash(password: string): Promise<string>;
  /** Constant-time check of `password` against `hash`; false for any malformed input. */
  verify(password: string, hash: string): Promise<boolean>;
  /** True when `hash` uses another scheme or fewer rounds than configured (passlib "deprecated=auto"). */
  needsRehash(hash: string): boolean;
  /** A hash of a random password at the configured cost, for timing-equal refusals. */
  dummyHash(): Promise<string>;
  /** Stops the workers. */
  close(): void;
}

/** Options of {@linkcode createBcryptHasher}. */
export interface BcryptHasherOptions {
  /** bcrypt cost factor (2^rounds iterations). */
  rounds: number;
  /**
   * Worker threads; 0 runs bcrypt on the calling thread (tests only, at low cost).
   * @default navigator.hardwareConcurrency
   */
  workers?: number;
}

/** bcrypt reads at most 72 bytes; longer input would be silently truncated, so it is refused. */
export const BCRYPT_MAX_BYTES = 72;

/** Revisions bcryptjs can verify, and the costs it accepts (4-31). */
const BCRYPT_HASH = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

/** NFKC so that the same password typed on another keyboard or OS hashes the same. */
export function normalizePassword(password: string): string {
  return password.normalize("NFKC");
}

/**
 * bcrypt behind a pool of worker threads sized to the CPU count, so hashing
 * never blocks request handling. Jobs queue when every worker is busy.
 */
export function createBcryptHasher(options: BcryptHasherOptions): PasswordHasher {
  const { rounds } = options;
  if (!Number.isInteger(rounds) || rounds < 4 || rounds > 31) {
    throw new RangeError(`Cannot create bcrypt hasher: rounds must be 4-31, got ${rounds}`);
  }
  const run = (options.workers ?? navigator.hardwareConcurrency) > 0
    ? createPool(options.workers ?? navigator.hardwareConcurrency)
    : runInline();
  let dummy: Promise<string> | undefined;

  return {
    async hash(password) {
      const normalized = normalizePassword(password);
      if (new TextEncoder().encode(normalized).byteLength > BCRYPT_MAX_BYTES) {
        throw new RangeError(`Cannot hash password: longer than ${BCRYPT_MAX_BYTES} bytes`);
      }
      return String(await run.submit({ op: "hash", password: normalized, rounds }));
    },
    async verify(password, hash) {
      const normalized = normalizePassword(password);
      const tooLong = new TextEncoder().encode(normalized).byteLength > BCRYPT_MAX_BYTES;
      const wellFormed = BCRYPT_HASH.test(hash);
      // Always pay for one bcrypt run so malformed input takes as long as a real check.
      const target = wellFormed ? hash : await this.dummyHash();
      const match = await run.submit({ op: "verify", password: normalized, hash: target });
      return match === true && wellFormed && !tooLong;
    },
    needsRehash(hash) {
      const m = BCRYPT_HASH.exec(hash);
      return m === null || !hash.startsWith("$2b$") || getRounds(hash) < rounds;
    },
    dummyHash() {
      dummy ??= this.hash(crypto.randomUUID());
      return dummy;
    },
    close() {
      run.close();
    },
  };
}

type Job = BcryptJob extends infer J ? J extends { id: number } ? Omit<J, "id"> : never : never;

interface Runner {
  submit(job: Job): Promise<string | boolean>;
  close(): void;
}

function runInline(): Runner {
  return {
    submit(job) {
      return Promise.resolve(
        job.op === "hash"
          ? hashSync(job.password, genSaltSync(job.rounds))
          : compareSync(job.password, job.hash),
      );
    },
    close() {},
  };
}

interface Pending {
  resolve(value: string | boolean): void;
  reject(error: Error): void;
}

function createPool(size: number): Runner {
  const url = new URL("./bcrypt_worker.ts", import.meta.url);
  const idle: Worker[] = [];
  const queue: BcryptJob[] = [];
  const pending = new Map<number, Pending>();
  const busy = new Map<Worker, number>();
  let nextId = 1;
  let closed = false;

  function dispatch(): void {
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
  for (let i = 0; i < size; i++) spawn(i);

  return {
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
