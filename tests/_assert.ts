/** Assertions in std's naming, built on `node:assert/strict`. */
export {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  notDeepStrictEqual as assertNotEquals,
  ok as assert,
} from "node:assert/strict";
import { fail } from "node:assert/strict";

/** Runs `fn`, asserts it throws an instance of `ErrorClass`, and returns the error. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any -- constructor signatures vary per error class
  ErrorClass: new (...args: any[]) => E,
): E {
  try {
    fn();
  } catch (error) {
    if (error instanceof ErrorClass) return error;
    throw error;
  }
  return fail(`expected ${ErrorClass.name} to be thrown`);
}

/** Awaits `fn`, asserts it rejects with an instance of `ErrorClass`, and returns the error. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any -- constructor signatures vary per error class
  ErrorClass: new (...args: any[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof ErrorClass) return error;
    throw error;
  }
  return fail(`expected ${ErrorClass.name} to be rejected`);
}
