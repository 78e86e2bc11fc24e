import { Hono } from "hono";
import type { AppEnv } from "../middleware/app_env.ts";
import { requirePermission, requirePrincipal } from "../middleware/auth.ts";
import { toPublicUser } from "../services/identity/users.ts";
import type { Deps, Services } from "./deps.ts";
import { route } from "./_route.ts";

/** `/users/*`: the caller's own account. */
export function userRoutes(_deps: Deps, _services: Services): Hono<AppEnv> {
  return new Hono<AppEnv>().get(
    "/me",
    route({
      summary: "The current user",
      tags: ["users"],
      auth: "bearer_or_api_key",
      responses: { 200: { description: "The user" } },
    }),
    requirePermission("profile:read"),
    // The account was read with the credential check, in the same KV round trip.
    (c) => c.json(toPublicUser(requirePrincipal(c).user)),
  );
}
