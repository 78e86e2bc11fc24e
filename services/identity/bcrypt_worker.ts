/// <reference lib="deno.worker" />
/**
 * Runs bcrypt off the main thread. One job at a time per worker; the pool in
 * `password_hasher.ts` sends `{ id, op, ... }` and gets `{ id, value }` or `{ id, error }`.
 */
import { compareSync, genSaltSync, hashSync } from "bcryptjs";

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
    const value = job.op === "hash"
      ? hashSync(job.password, genSaltSync(job.rounds))
      : compareSync(job.password, job.hash);
    self.postMessage({ id: job.id, value } satisfies BcryptResult);
  } catch (error) {
    self.postMessage({ id: job.id, error: String(error) } satisfies BcryptResult);
  }
};
