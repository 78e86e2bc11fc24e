import type { Principal } from "../services/auth/auth.ts";
import type { AppError } from "../services/core/errors.ts";
import type { Logger } from "../services/core/logger.ts";
import type { RoutePolicy } from "./route_policy.ts";

/** Bindings passed by `Deno.serve` as the second handler argument. */
export interface ServerBindings {
  remoteAddr?: Deno.Addr;
}

/** Per-request values shared by middleware and routes. */
export interface AppVariables {
  requestId: string;
  clientIp: string;
  logger: Logger;
  /** The authenticated caller, or null for an anonymous request. */
  principal: Principal | null;
  /** Why a presented credential was refused, for routes that require one. */
  authError: AppError | null;
  /** The matched route's declared policy (see `route_policy.ts`), once read. */
  routePolicy: RoutePolicy | undefined;
}

/** The one Hono environment type of the app. */
export interface AppEnv {
  Bindings: ServerBindings;
  Variables: AppVariables;
}
