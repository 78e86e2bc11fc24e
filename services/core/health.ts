import type { Clock } from "./clock.ts";
import { ServiceUnavailableError } from "./errors.ts";
import { healthKey } from "./kv_keys.ts";
import type { Logger } from "./logger.ts";

/** Readiness checks. */
export interface HealthService {
  /**
   * Proves the store answers a strong read within the timeout.
   *
   * @throws {ServiceUnavailableError} when it does not
   */
  checkStore(): Promise<void>;
}

/** Dependencies of {@linkcode createHealthService}. */
export interface HealthDeps {
  kv: Deno.Kv;
  clock: Clock;
  logger: Logger;
  /** @default 2000 */
  timeoutMs?: number;
}

/** Creates the readiness service. */
export function createHealthService(deps: HealthDeps): HealthService {
  const timeoutMs = deps.timeoutMs ?? 2000;
  return {
    async checkStore() {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("KV probe timed out")), timeoutMs);
      });
      try {
        await Promise.race([deps.kv.get(healthKey(), { consistency: "strong" }), timeout]);
      } catch (error) {
        deps.logger.warn("store not ready", { error });
        throw new ServiceUnavailableError("The store is not answering", { cause: error });
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
