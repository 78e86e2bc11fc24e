/// <reference lib="deno.worker" />
/**
 * Runs bcryptjs off the main thread (the fallback engine). One job at a time
 * per worker; the pool in `bcrypt_engines.ts` sends `{ id, op, ... }` and gets
 * `{ id, value }` or `{ id, error }`.
 */
import { runJs } from "./bcrypt_engines.ts";

/** A job sent to the worker. */
export type BcryptJob =
  | { id: number; op: "hash"; password: string; rounds: number }
  | { id: number; op: "verify"; password: string; hash: string };

/** A worker's answer. */
export type BcryptResult =
  | { id: number; value: string | boolean }
  | { id: number; error: string };

self.onmessage = (event: MessageEvent<BcryptJob>) => {
  const job = event.data;
  try {
    const value = runJs(job);
    self.postMessage({ id: job.id, value } satisfies BcryptResult);
  } catch (error) {
    self.postMessage({ id: job.id, error: String(error) } satisfies BcryptResult);
  }
};
