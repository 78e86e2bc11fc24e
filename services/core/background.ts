import type { Logger } from "./logger.ts";

/** Work that runs after the response (mails), tracked so tests and shutdown can await it. */
export interface BackgroundTasks {
  /** Starts `task`; a failure is logged with the request id, as no caller is left to see it. */
  run(what: string, requestId: string, task: () => Promise<void>): void;
  /** Resolves when every task started so far has finished. */
  settled(): Promise<void>;
}

/** Creates a tracker of background tasks. */
export function createBackgroundTasks(logger: Logger): BackgroundTasks {
  const pending = new Set<Promise<void>>();
  return {
    run(what, requestId, task) {
      const running = task().catch((error) => {
        logger.error(`${what} failed`, { request_id: requestId, error });
      });
      pending.add(running);
      running.finally(() => pending.delete(running));
    },
    async settled() {
      while (pending.size > 0) await Promise.all(pending);
    },
  };
}
