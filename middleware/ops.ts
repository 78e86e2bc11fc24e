import type { Context } from "hono";
import { matchedRoutes } from "hono/route";
import { hasAdminReach } from "../services/auth/permissions.ts";
import {
  AccountLockedError,
  AppError,
  IpBlockedError,
  MaintenanceError,
} from "../services/core/errors.ts";
import type { BlockService } from "../services/ops/blocks.ts";
import type { Metrics } from "../services/ops/metrics.ts";
import type { AppEnv } from "./app_env.ts";
import { routePolicyOf } from "./route_policy.ts";

/**
 * Counts a finished request by route template (never the raw path, so ids
 * cannot explode the label space), method and status class, with its latency,
 * and feeds the families read from the outcome (rate-limit class,
 * authorization and API-key refusals, login, refresh and upload outcomes).
 * Called by the `edge` layer once the response is final: no layer of its own.
 */
export function recordRequestMetrics(
  c: Context<AppEnv>,
  metrics: Metrics,
  seconds: number,
): void {
  const error = c.error;
  // Unset when a guard refused the request before authentication ran.
  const authError = c.get("authError") ?? null;
  const principal = c.get("principal") ?? null;
  metrics.request({
    method: c.req.method,
    route: routeTemplate(c),
    status: c.res.status,
    seconds,
    code: error instanceof AppError ? error.code : null,
    rateClass: routePolicyOf(c).rate,
    credential: principal === null ? "none" : principal.kind === "api_key" ? "api_key" : "bearer",
    // authenticate() reads X-API-Key only without an Authorization header.
    apiKeyError: authError !== null && c.req.header("authorization") === undefined &&
        c.req.header("x-api-key") !== undefined
      ? authError.code
      : null,
  });
}

/**
 * The template of the route the request matched (`/uploads/:id`), also when a
 * middleware refused it before the handler ran; "unmatched" for a 404, so
 * scanners probing random paths add one label, not one per path.
 */
function routeTemplate(c: Context<AppEnv>): string {
  // Middleware is registered for every method ("ALL"); a route handler names its own.
  const route = matchedRoutes(c).findLast((r) => r.method !== "ALL");
  return route?.path ?? "unmatched";
}

/**
 * A blocked address gets 403 `ip_blocked` before any other work (API.md): the
 * check reads the in-memory block view, never the store per request. Run by
 * the `guard` layer before authentication.
 *
 * @throws {IpBlockedError} for a blocked address
 */
export async function refuseBlockedIp(c: Context<AppEnv>, blocks: BlockService): Promise<void> {
  const block = await blocks.ipBlock(c.get("clientIp"));
  if (block !== null) throw new IpBlockedError("Requests from this address are blocked");
}

/**
 * Right after authentication: a blocked user gets 423 `account_locked` with
 * `Retry-After`, and while lockdown is on, the routes that declare `lockdown`
 * (logins, registrations, refreshes, password resets and OAuth2 grants) get
 * 503 `maintenance` — except for an admin's credential, so admins can still
 * act. Run by the `guard` layer between authentication and the rate limit.
 *
 * @throws {AccountLockedError} | {MaintenanceError}
 */
export async function refuseBlockedAccount(
  c: Context<AppEnv>,
  blocks: BlockService,
): Promise<void> {
  const principal = c.get("principal");
  if (principal !== null) {
    const block = await blocks.userBlock(principal.userId);
    if (block !== null) {
      throw new AccountLockedError("The account is blocked", {
        retryAfter: blocks.secondsLeft(block),
      });
    }
  }
  // An admin's own reach (role and an admin scope), not any credential of an admin account.
  if (routePolicyOf(c).lockdown && (principal === null || !hasAdminReach(principal))) {
    const lockdown = await blocks.lockdown();
    if (lockdown?.on) throw new MaintenanceError("Sign-ins are suspended during an incident");
  }
}
