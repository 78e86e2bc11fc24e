import { getRounds } from "bcryptjs";
import type { Logger } from "../core/logger.ts";
import {
  type BcryptEngine,
  type BcryptEngineName,
  createInlineEngine,
  createWorkerEngine,
  type EngineJob,
  loadNativeEngine,
} from "./bcrypt_engines.ts";

/** Hashes and verifies passwords; implementations never block the event loop. */
export interface PasswordHasher {
  /** Which bcrypt implementation runs, once it is chosen (see {@linkcode BcryptBackend}). */
  readonly engine: Promise<BcryptEngineName>;
  /** Returns a `$2b$` bcrypt hash of the NFKC-normalised password. */
  hash(password: string): Promise<string>;
  /** Constant-time check of `password` against `hash`; false for any malformed input. */
  verify(password: string, hash: string): Promise<boolean>;
  /** True when `hash` uses another scheme or fewer rounds than configured (passlib "deprecated=auto"). */
  needsRehash(hash: string): boolean;
  /**
   * A hash of a random password at the configured cost, for timing-equal
   * refusals; computed once, by the first caller (start-up warms it in the background).
   */
  dummyHash(): Promise<string>;
  /** Stops the workers. */
  close(): void;
}

/** Which bcrypt implementation to run: `auto` prefers native code and falls back to bcryptjs. */
export type BcryptBackend = "auto" | BcryptEngineName;

/** Options of {@linkcode createBcryptHasher}. */
export interface BcryptHasherOptions {
  /** bcrypt cost factor (2^rounds iterations). */
  rounds: number;
  /**
   * `native`: npm `bcrypt`, OpenBSD's C code (needs `--allow-ffi`), failing every hash when it cannot
   * load; `js`: bcryptjs in worker threads; `auto`: native when it loads, else js (logged).
   * @default "auto"
   */
  backend?: BcryptBackend;
  /**
   * Hashes running at once (native) or worker threads (js); 0 runs bcryptjs on
   * the calling thread (tests only, at low cost).
   * @default navigator.hardwareConcurrency
   */
  workers?: number;
  /** Told which implementation runs, and why native code did not load. */
  logger?: Logger;
}

/** bcrypt reads at most 72 bytes; longer input would be silently truncated, so it is refused. */
export const BCRYPT_MAX_BYTES = 72;

/** Revisions every engine can verify, and the costs they accept (4-31). */
const BCRYPT_HASH = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

/** NFKC so that the same password typed on another keyboard or OS hashes the same. */
export function normalizePassword(password: string): string {
  return password.normalize("NFKC");
}

/**
 * bcrypt off the event loop: native code on Deno's blocking thread pool, or
 * bcryptjs in worker threads where native code cannot load. The engine is
 * loaded by the first job (or by reading `engine`), so creating a hasher costs
 * nothing at start-up; that job waits for it.
 */
export function createBcryptHasher(options: BcryptHasherOptions): PasswordHasher {
  const { rounds } = options;
  if (!Number.isInteger(rounds) || rounds < 4 || rounds > 31) {
    throw new RangeError(`Cannot create bcrypt hasher: rounds must be 4-31, got ${rounds}`);
  }
  const size = options.workers ?? navigator.hardwareConcurrency;
  if (!Number.isInteger(size) || size < 0) {
    throw new RangeError(`Cannot create bcrypt hasher: workers must be >= 0, got ${size}`);
  }
  // Loaded by the first job (or `engine`), not here: loading native code or starting workers
  // while the first request is served would delay it (`serve` warms it right after).
  let loading: Promise<BcryptEngine> | undefined;
  const loadEngine = (): Promise<BcryptEngine> => {
    if (loading === undefined) {
      loading = size === 0
        ? Promise.resolve(createInlineEngine())
        : pickEngine(options.backend ?? "auto", size, options.logger);
      // Every job awaits the engine and sees a load failure; this only keeps an
      // unused, failed engine from being an unhandled rejection.
      loading.catch(() => {});
    }
    return loading;
  };
  // Native jobs cannot be interrupted mid-hash, so close() settles callers here, for every engine.
  const cancels = new Set<(error: Error) => void>();
  let closed = false;
  const submit = async (job: EngineJob): Promise<string | boolean> => {
    if (closed) throw new Error("Cannot hash: the hasher is closed");
    const { promise: cancelled, reject } = Promise.withResolvers<never>();
    cancels.add(reject);
    try {
      return await Promise.race([loadEngine().then((e) => e.submit(job)), cancelled]);
    } finally {
      cancels.delete(reject);
    }
  };
  let dummy: Promise<string> | undefined;

  return {
    get engine() {
      return loadEngine().then((e) => e.name);
    },
    async hash(password) {
      const normalized = normalizePassword(password);
      if (new TextEncoder().encode(normalized).byteLength > BCRYPT_MAX_BYTES) {
        throw new RangeError(`Cannot hash password: longer than ${BCRYPT_MAX_BYTES} bytes`);
      }
      return String(await submit({ op: "hash", password: normalized, rounds }));
    },
    async verify(password, hash) {
      const normalized = normalizePassword(password);
      const tooLong = new TextEncoder().encode(normalized).byteLength > BCRYPT_MAX_BYTES;
      const wellFormed = BCRYPT_HASH.test(hash);
      // Always pay for one bcrypt run so malformed input takes as long as a real check.
      const target = wellFormed ? hash : await this.dummyHash();
      const match = await submit({ op: "verify", password: normalized, hash: target });
      return match === true && wellFormed && !tooLong;
    },
    needsRehash(hash) {
      const m = BCRYPT_HASH.exec(hash);
      return m === null || !hash.startsWith("$2b$") || getRounds(hash) < rounds;
    },
    dummyHash() {
      if (dummy === undefined) {
        const made = this.hash(crypto.randomUUID());
        // A failure (engine did not load, hasher closed) is not kept: the next caller retries.
        made.catch(() => {
          if (dummy === made) dummy = undefined;
        });
        dummy = made;
      }
      return dummy;
    },
    close() {
      closed = true;
      for (const cancel of cancels) cancel(new Error("The hasher was closed"));
      cancels.clear();
      loading?.then((e) => e.close(), () => {});
    },
  };
}

/** Loads the engine `backend` asks for; `auto` falls back to bcryptjs workers, saying why. */
async function pickEngine(
  backend: BcryptBackend,
  size: number,
  logger: Logger | undefined,
): Promise<BcryptEngine> {
  if (backend === "js") {
    logger?.info("bcrypt: bcryptjs in worker threads (BCRYPT_BACKEND=js)", { workers: size });
    return createWorkerEngine(size);
  }
  try {
    const native = await loadNativeEngine(size);
    logger?.info("bcrypt: native code (npm bcrypt, C)", { concurrency: size });
    return native;
  } catch (error) {
    // Every load failure (no --allow-ffi, no binary for this platform) means
    // the same here: bcryptjs. Asked for `native` explicitly, it is fatal.
    if (backend === "native" || !(error instanceof Error)) throw error;
    logger?.warn("bcrypt: native code did not load; using bcryptjs in worker threads", {
      reason: error.message,
      workers: size,
    });
    return createWorkerEngine(size);
  }
}
