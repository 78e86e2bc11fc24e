import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../middleware/app_env.ts";
import { requestMeta, requirePermission, requireSession } from "../middleware/auth.ts";
import { validate } from "../middleware/validate.ts";
import type { Deps, Services } from "./deps.ts";
import { IdParam, jsonResponse, route } from "./_route.ts";

const SessionOut = z.object({
  id: z.string(),
  created_at: z.iso.datetime(),
  last_seen_at: z.iso.datetime(),
  ip: z.string(),
  user_agent: z.string(),
  remember_me: z.boolean(),
  current: z.boolean(),
});

/** `/auth/sessions`: the caller's own sessions. */
export function sessionRoutes(_deps: Deps, services: Services): Hono<AppEnv> {
  const { auth } = services;
  return new Hono<AppEnv>()
    .get(
      "/",
      route({
        summary: "List my sessions",
        tags: ["sessions"],
        auth: "bearer",
        responses: { 200: jsonResponse(z.array(SessionOut), "Sessions") },
      }),
      requirePermission("sessions:manage"),
      async (c) => {
        const list = await auth.listSessions(requireSession(c));
        return c.json(list.map((s) => ({
          id: s.id,
          created_at: s.createdAt,
          last_seen_at: s.lastSeenAt,
          ip: s.ip,
          user_agent: s.userAgent,
          remember_me: s.rememberMe,
          current: s.current,
        })));
      },
    )
    .delete(
      "/:id",
      route({
        summary: "Revoke one of my sessions",
        tags: ["sessions"],
        auth: "bearer",
        responses: {
          204: { description: "Revoked" },
          404: { description: "No such session of yours" },
        },
      }),
      requirePermission("sessions:manage"),
      validate("param", IdParam),
      async (c) => {
        await auth.revokeSession(requireSession(c), c.req.valid("param").id, requestMeta(c));
        return c.body(null, 204);
      },
    );
}
