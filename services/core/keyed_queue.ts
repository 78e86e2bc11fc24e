/** Runs async tasks one after another per key; tasks of different keys run freely. */
export interface KeyedQueue {
  run<T>(key: string, task: () => Promise<T>): Promise<T>;
  /** Keys with a task queued or running: a key is forgotten once its last task settles. */
  size(): number;
}

/**
 * Creates a per-key queue. Read-modify-write cycles on one KV record from one
 * instance would only lose versionstamp races to each other; queueing them
 * leaves `check()` to settle only what other instances do.
 */
export function createKeyedQueue(): KeyedQueue {
  const tails = new Map<string, Promise<unknown>>();
  return {
    run(key, task) {
      const previous = tails.get(key) ?? Promise.resolve();
      const result = previous.then(task, task);
      const settled = result.then(() => {}, () => {});
      tails.set(key, settled);
      void settled.then(() => {
        if (tails.get(key) === settled) tails.delete(key);
      });
      return result;
    },
    size: () => tails.size,
  };
}
