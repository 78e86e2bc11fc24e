/** Held-back timers, for timer code that takes no injected scheduler. */

/** Timers held by {@linkcode holdTimeouts}; `using` puts the real `setTimeout` back. */
export interface HeldTimeouts extends Disposable {
  /** Timers held and neither fired nor cleared yet. */
  pending(): number;
  /** Runs every held callback now, as if its delay had passed, and forgets it. */
  fire(): void;
}

/**
 * Holds back every `setTimeout` whose delay is exactly `delayMs` until {@linkcode HeldTimeouts.fire}
 * runs it; every other timer runs as usual, so socket timeouts stay real.
 *
 * This is for opossum's circuit breaker: it moves from open to half-open with the global
 * `setTimeout(…, resetTimeout)` and has no option for a scheduler and no public way to trigger
 * that transition. A test gives the breaker a distinctive `resetTimeoutMs` (e.g. an hour) and
 * fires that one timer instead of sleeping through it. Like std's `FakeTime` this patches
 * `globalThis`, which is why only timer code may use it (STYLE §8).
 */
export function holdTimeouts(delayMs: number): HeldTimeouts {
  const realSetTimeout = globalThis.setTimeout;
  const realClearTimeout = globalThis.clearTimeout;
  const held = new Map<number, () => void>();
  // Negative ids never collide with the runtime's own, which count up from 1.
  let nextId = -1;

  const hold = (handler: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    if (ms !== delayMs) return realSetTimeout(handler, ms, ...args);
    const id = nextId--;
    held.set(id, () => handler(...args));
    return id;
  };
  const clear = (id?: number) => {
    if (id !== undefined && held.delete(id)) return;
    realClearTimeout(id);
  };
  globalThis.setTimeout = hold as unknown as typeof setTimeout;
  globalThis.clearTimeout = clear as unknown as typeof clearTimeout;

  return {
    pending: () => held.size,
    fire() {
      const due = [...held.values()];
      held.clear();
      for (const run of due) run();
    },
    [Symbol.dispose]() {
      globalThis.setTimeout = realSetTimeout;
      globalThis.clearTimeout = realClearTimeout;
    },
  };
}
