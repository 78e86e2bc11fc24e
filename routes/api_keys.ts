import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../middleware/app_env.ts";
import {
  requestMeta,
  requirePermission,
  requireSession,
  requireSessionAuth,
  requireVerifiedEmail,
} from "../middleware/auth.ts";
import { validate } from "../middleware/validate.ts";
import type { Deps, Services } from "./deps.ts";
import { IdParam, jsonResponse, route, type RouteSpec } from "./_route.ts";

const CreateBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  scopes: z.array(z.string().max(64)).min(1).max(32),
  expires_in_days: z.number().int().min(1).max(365).optional(),
  allowed_ips: z.array(z.string().max(64)).max(32).optional(),
});
const RotateBody = z.strictObject({ grace_hours: z.number().int().min(0).max(168).optional() });

const CreatedOut = z.object({
  id: z.string(),
  name: z.string(),
  key: z.string().describe("Shown only once"),
  prefix: z.string(),
  scopes: z.array(z.string()),
  allowed_ips: z.array(z.string()),
  expires_at: z.iso.datetime(),
  created_at: z.iso.datetime(),
});

const ListedOut = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  scopes: z.array(z.string()),
  allowed_ips: z.array(z.string()),
  expires_at: z.iso.datetime(),
  created_at: z.iso.datetime(),
  last_used_at: z.iso.datetime().nullable(),
  last_used_ip: z.string().nullable(),
  usage_count: z.number().int(),
  rotated_at: z.iso.datetime().nullable(),
});

function doc(summary: string, responses: RouteSpec["responses"]) {
  return route({ summary, tags: ["api-keys"], auth: "bearer", responses });
}

/** `/api-keys`: managed with a Bearer user token only; a key can never manage keys. */
export function apiKeyRoutes(deps: Deps, services: Services): Hono<AppEnv> {
  const { apiKeys } = services;
  const verified = requireVerifiedEmail(deps.config.requireEmailVerification);
  return new Hono<AppEnv>()
    .use(requirePermission("apikeys:manage"), requireSessionAuth())
    .post(
      "/",
      doc("Create an API key (the key is shown once)", {
        201: jsonResponse(CreatedOut, "Created"),
      }),
      verified,
      validate("json", CreateBody),
      async (c) => {
        // The owner's account was read with the credential check, in the same round trip.
        const principal = requireSession(c);
        const body = c.req.valid("json");
        const key = await apiKeys.create(
          principal.user,
          {
            name: body.name,
            scopes: body.scopes,
            expiresInDays: body.expires_in_days ?? 90,
            allowedIps: body.allowed_ips ?? [],
          },
          principal.scopes,
          requestMeta(c),
        );
        c.header("Location", `/api-keys/${key.id}`);
        return c.json(key, 201);
      },
    )
    .get(
      "/",
      doc("List my API keys (never the key or its hash)", {
        200: jsonResponse(z.array(ListedOut), "Keys"),
      }),
      async (c) => c.json(await apiKeys.list(requireSession(c).userId)),
    )
    .post(
      "/:id/rotate",
      doc("Issue a new key; the old one works until the grace period ends", {
        201: jsonResponse(CreatedOut, "Rotated"),
      }),
      verified,
      validate("param", IdParam),
      validate("json", RotateBody),
      async (c) => {
        const principal = requireSession(c);
        const key = await apiKeys.rotate(
          principal.userId,
          c.req.valid("param").id,
          c.req.valid("json").grace_hours ?? 24,
          principal.scopes,
          requestMeta(c),
        );
        c.header("Location", `/api-keys/${key.id}`);
        return c.json(key, 201);
      },
    )
    .delete(
      "/:id",
      doc("Revoke an API key at once", { 204: { description: "Revoked" } }),
      validate("param", IdParam),
      async (c) => {
        await apiKeys.revoke(requireSession(c).userId, c.req.valid("param").id, requestMeta(c));
        return c.body(null, 204);
      },
    );
}
