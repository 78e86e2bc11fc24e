import { Hono } from "hono";
import type { AppEnv } from "../../middleware/app_env.ts";
import type { Deps, Services } from "../deps.ts";
import { route } from "../_route.ts";
import { authorizeRoutes } from "./authorize.ts";
import { consentRoutes } from "./consents.ts";
import { tokenRoutes } from "./token.ts";

/** `/oauth2/*`: the authorization server's endpoints. */
export function oauth2Routes(deps: Deps, services: Services): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .route("/consents", consentRoutes(deps, services))
    .route("/", tokenRoutes(deps, services))
    .route("/", authorizeRoutes(deps, services));
}

/** `GET /.well-known/oauth-authorization-server` (RFC 8414). */
export function oauth2MetadataRoutes(_deps: Deps, services: Services): Hono<AppEnv> {
  return new Hono<AppEnv>().get(
    "/oauth-authorization-server",
    route({
      summary: "Authorization server metadata (RFC 8414)",
      tags: ["oauth2"],
      responses: { 200: { description: "Metadata" } },
    }),
    (c) => {
      // Public and static: caches may keep it briefly.
      c.header("Cache-Control", "public, max-age=300");
      return c.json(services.oauth2.metadata());
    },
  );
}
