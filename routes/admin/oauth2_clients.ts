import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../middleware/app_env.ts";
import { requestMeta, requirePermission, requireSession } from "../../middleware/auth.ts";
import { validate } from "../../middleware/validate.ts";
import { GRANT_TYPES, toClientView } from "../../services/oauth2/clients.ts";
import type { Deps, Services } from "../deps.ts";
import { jsonResponse, route } from "../_route.ts";

const NewClientBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  redirect_uris: z.array(z.string().max(2048)).max(20).default([]),
  type: z.enum(["public", "confidential"]),
  grant_types: z.array(z.enum(GRANT_TYPES)).min(1).max(3),
  scopes: z.array(z.string().max(64)).min(1).max(32),
});

const ClientOut = z.object({
  client_id: z.string(),
  name: z.string(),
  type: z.enum(["public", "confidential"]),
  redirect_uris: z.array(z.string()),
  grant_types: z.array(z.string()),
  scopes: z.array(z.string()),
  created_at: z.iso.datetime(),
});

const CreatedOut = ClientOut.extend({ client_secret: z.string().optional() });

const ClientIdParam = z.strictObject({ id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) });

function toWire(view: ReturnType<typeof toClientView>) {
  return {
    client_id: view.id,
    name: view.name,
    type: view.type,
    redirect_uris: view.redirect_uris,
    grant_types: view.grant_types,
    scopes: view.scopes,
    created_at: view.created_at,
  };
}

/** `/admin/oauth2/clients`: register, list and delete OAuth2 clients (`oauth_clients:manage`). */
export function adminOAuth2ClientRoutes(_deps: Deps, services: Services): Hono<AppEnv> {
  const { oauth2 } = services;
  return new Hono<AppEnv>()
    .post(
      "/",
      route({
        summary: "Register an OAuth2 client; a confidential client's secret is shown only here",
        tags: ["admin", "oauth2"],
        auth: "bearer",
        responses: { 201: jsonResponse(CreatedOut, "Registered") },
      }),
      requirePermission("oauth_clients:manage"),
      validate("json", NewClientBody),
      async (c) => {
        const body = c.req.valid("json");
        const admin = requireSession(c);
        const { client, secret } = await oauth2.createClient(
          {
            name: body.name,
            type: body.type,
            redirectUris: body.redirect_uris,
            grantTypes: body.grant_types,
            scopes: body.scopes,
          },
          admin.userId,
          requestMeta(c),
        );
        c.header("Location", `/admin/oauth2/clients/${client.id}`);
        return c.json({
          ...toWire(toClientView(client)),
          ...(secret === null ? {} : { client_secret: secret }),
        }, 201);
      },
    )
    .get(
      "/",
      route({
        summary: "List OAuth2 clients (never their secrets)",
        tags: ["admin", "oauth2"],
        auth: "bearer",
        responses: { 200: jsonResponse(z.array(ClientOut), "Clients") },
      }),
      requirePermission("oauth_clients:manage"),
      async (c) => c.json((await oauth2.clients.list()).map((cl) => toWire(toClientView(cl)))),
    )
    .delete(
      "/:id",
      route({
        summary: "Delete an OAuth2 client and revoke everything issued to it",
        tags: ["admin", "oauth2"],
        auth: "bearer",
        responses: { 204: { description: "Deleted" }, 404: { description: "No such client" } },
      }),
      requirePermission("oauth_clients:manage"),
      validate("param", ClientIdParam),
      async (c) => {
        await oauth2.deleteClient(
          c.req.valid("param").id,
          requireSession(c).userId,
          requestMeta(c),
        );
        return c.body(null, 204);
      },
    );
}
