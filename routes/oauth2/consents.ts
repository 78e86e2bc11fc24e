import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../middleware/app_env.ts";
import { requestMeta, requireSession, requireSessionAuth } from "../../middleware/auth.ts";
import { validate } from "../../middleware/validate.ts";
import type { Deps, Services } from "../deps.ts";
import { jsonResponse, route } from "../_route.ts";

const ConsentOut = z.object({
  client_id: z.string(),
  client_name: z.string().nullable(),
  scopes: z.array(z.string()),
  granted_at: z.iso.datetime(),
});

const ClientIdParam = z.strictObject({ client_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) });

/** `GET /oauth2/consents`, `DELETE /oauth2/consents/{client_id}`: the caller's own consents. */
export function consentRoutes(_deps: Deps, services: Services): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .get(
      "/",
      route({
        summary: "The applications you allowed, with their scopes",
        tags: ["oauth2"],
        auth: "bearer",
        responses: { 200: jsonResponse(z.array(ConsentOut), "Consents") },
      }),
      // A user session only: a client must not read or end the user's other consents.
      requireSessionAuth(),
      async (c) => c.json(await services.oauth2.listConsents(requireSession(c).userId)),
    )
    .delete(
      "/:client_id",
      route({
        summary: "Withdraw a consent; that application's tokens stop working",
        tags: ["oauth2"],
        auth: "bearer",
        responses: { 204: { description: "Withdrawn" }, 404: { description: "No consent" } },
      }),
      requireSessionAuth(),
      validate("param", ClientIdParam),
      async (c) => {
        const { client_id } = c.req.valid("param");
        await services.oauth2.revokeConsent(requireSession(c).userId, client_id, requestMeta(c));
        return c.body(null, 204);
      },
    );
}
