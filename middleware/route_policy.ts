import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { RateTier } from "../services/limits/rate_policy.ts";
import type { AppEnv } from "./app_env.ts";

/**
 * What a route declares where it is mounted, read by the cross-cutting
 * layers: they hold no route strings of their own, so a new route (say
 * `/oauth2/token`) touches only the module that adds it.
 */
export interface RoutePolicy {
  /** The rate budget the route draws on, or "none" for probes. @default "general" */
  readonly rate: RateTier | "none";
  /** "stream": the route reads and caps its own body (uploads). @default "json" */
  readonly body: "json" | "stream";
  /** Whether a caller with an expired password may use the route. @default false */
  readonly allowExpiredPassword: boolean;
  /**
   * Whether the lockdown kill switch closes the route (503 `maintenance`, admins
   * excepted): sign-ins, registrations, refreshes, resets and OAuth2 grants.
   * @default true for the login rate class, false otherwise
   */
  readonly lockdown: boolean;
}

/** The policy of every route that declares none. */
export const DEFAULT_ROUTE_POLICY: RoutePolicy = Object.freeze({
  rate: "general",
  body: "json",
  allowExpiredPassword: false,
  lockdown: false,
});

/** Liveness and readiness probes: never limited, answered whatever the caller's password state. */
export const PROBE_POLICY: Partial<RoutePolicy> = Object.freeze({
  rate: "none",
  allowExpiredPassword: true,
});

const POLICY = Symbol("routePolicy");

type Tagged = { [POLICY]?: RoutePolicy };

/**
 * Attaches a policy to a route's handler (any middleware in its chain, usually
 * its OpenAPI description, so it costs no extra layer). Later tags win.
 */
export function withRoutePolicy<H extends MiddlewareHandler>(
  handler: H,
  policy: Partial<RoutePolicy>,
): H {
  return Object.assign(handler, {
    [POLICY]: Object.freeze({
      ...DEFAULT_ROUTE_POLICY,
      lockdown: policy.rate === "login",
      ...policy,
    }),
  });
}

/** The declared policy of the route this request matched (read once, then kept on the context). */
export function routePolicyOf(c: Context<AppEnv>): RoutePolicy {
  const known = c.get("routePolicy");
  if (known !== undefined) return known;
  let policy = DEFAULT_ROUTE_POLICY;
  for (const route of matchedRoutes(c)) {
    policy = (route.handler as Tagged)[POLICY] ?? policy;
  }
  c.set("routePolicy", policy);
  return policy;
}
