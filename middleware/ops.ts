import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { hasRole } from "../services/auth/permissions.ts";
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

/** Options of {@linkcode requestMetrics}. */
export interface RequestMetricsOptions {
  metrics: Metrics;
  /** Monotonic milliseconds. @default performance.now */
  now?: () => number;
}

/**
 * Counts every request by route template (never the raw path, so ids cannot
 * explode the label space), method and status class, with its latency, and
 * feeds the families read from the outcome (rate-limit class, authorization
 * and API-key refusals, login, refresh and upload outcomes).
 */
export function requestMetrics(options: RequestMetricsOptions): MiddlewareHandler<AppEnv> {
  const { metrics } = options;
  const now = options.now ?? (() => performance.now());
  return async function requestMetrics(c, next) {
    const started = now();
    await next();
    const error = c.error;
    // Unset when a guard refused the request before authentication ran.
    const authError = c.get("authError") ?? null;
    const principal = c.get("principal") ?? null;
    metrics.request({
      method: c.req.method,
      route: routeTemplate(c),
      status: c.res.status,
      seconds: (now() - started) / 1000,
      code: error instanceof AppError ? error.code : null,
      rateClass: routePolicyOf(c).rate,
      credential: principal === null ? "none" : principal.kind === "api_key" ? "api_key" : "bearer",
      // authenticate() reads X-API-Key only without an Authorization header.
      apiKeyError: authError !== null && c.req.header("authorization") === undefined &&
          c.req.header("x-api-key") !== undefined
        ? authError.code
        : null,
    });
  };
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

/** Options of {@linkcode blockedIpGuard} and {@linkcode accountGuard}. */
export interface GuardOptions {
  blocks: BlockService;
}

/**
 * A blocked address gets 403 `ip_blocked` before any other work (API.md):
 * the check reads the in-memory block view, never the store per request.
 */
export function blockedIpGuard(options: GuardOptions): MiddlewareHandler<AppEnv> {
  const { blocks } = options;
  return async function blockedIpGuard(c, next) {
    const block = await blocks.ipBlock(c.get("clientIp"));
    if (block !== null) throw new IpBlockedError("Requests from this address are blocked");
    await next();
  };
}

/**
 * Right after authentication: a blocked user gets 423 `account_locked` with
 * `Retry-After`, and while lockdown is on, logins, registrations, refreshes,
 * password resets and OAuth2 grants get 503 `maintenance` — except for an
 * admin's credential, so admins can still act.
 */
export function accountGuard(options: GuardOptions): MiddlewareHandler<AppEnv> {
  const { blocks } = options;
  return async function accountGuard(c, next) {
    const principal = c.get("principal");
    if (principal !== null) {
      const block = await blocks.userBlock(principal.userId);
      if (block !== null) {
        throw new AccountLockedError("The account is blocked", {
          retryAfter: blocks.secondsLeft(block),
        });
      }
    }
    // Routes declare whether lockdown closes them (`route({ policy: { lockdown } })`).
    if (routePolicyOf(c).lockdown && (principal === null || !hasRole(principal.role, "admin"))) {
      const lockdown = await blocks.lockdown();
      if (lockdown?.on) throw new MaintenanceError("Sign-ins are suspended during an incident");
    }
    await next();
  };
}
