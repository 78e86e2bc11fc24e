import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import type { AppEnv } from "../middleware/app_env.ts";
import { requirePermission, requirePrincipal } from "../middleware/auth.ts";
import { toPublicUser } from "../services/identity/users.ts";
import type { Deps, Services } from "./deps.ts";

/** `/users/*`: the caller's own account. */
export function userRoutes(_deps: Deps, _services: Services): Hono<AppEnv> {
  return new Hono<AppEnv>().get(
    "/me",
    describeRoute({
      summary: "The current user",
      tags: ["users"],
      security: [{ bearer: [] }],
      responses: { 200: { description: "The user" } },
    }),
    requirePermission("profile:read"),
    // The account was read with the credential check, in the same KV round trip.
    (c) => c.json(toPublicUser(requirePrincipal(c).user)),
  );
}
