import type { Clock } from "../services/clock.ts";
import type { Config } from "../services/config.ts";
import type { Logger } from "../services/logger.ts";

/** Everything the app needs, injected; two apps built from two Deps share nothing. */
export interface Deps {
  readonly config: Config;
  readonly kv: Deno.Kv;
  readonly clock: Clock;
  readonly logger: Logger;
}
