import { Hono } from "hono";
import { describeRoute, resolver } from "hono-openapi";
import { z } from "zod";
import type { AppEnv } from "../middleware/app_env.ts";
import { requestMeta, requirePermission, requireSession } from "../middleware/auth.ts";
import { validate } from "../middleware/validate.ts";
import type { Deps, Services } from "./deps.ts";

const SessionOut = z.object({
  id: z.string(),
  created_at: z.iso.datetime(),
  last_seen_at: z.iso.datetime(),
  ip: z.string(),
  user_agent: z.string(),
  remember_me: z.boolean(),
  current: z.boolean(),
});

const SessionParam = z.strictObject({ id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/) });

/** `/auth/sessions`: the caller's own sessions. */
export function sessionRoutes(_deps: Deps, services: Services): Hono<AppEnv> {
  const { sessions, audit } = services;
  return new Hono<AppEnv>()
    .get(
      "/",
      describeRoute({
        summary: "List my sessions",
        tags: ["sessions"],
        security: [{ bearer: [] }],
        responses: {
          200: {
            description: "Sessions",
            content: { "application/json": { schema: resolver(z.array(SessionOut)) } },
          },
        },
      }),
      requirePermission("sessions:manage"),
      async (c) => {
        const principal = requireSession(c);
        const list = await sessions.listForUser(principal.userId);
        return c.json(
          list.sort((a, b) => b.created_at.localeCompare(a.created_at)).map((s) => ({
            id: s.id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            ip: s.ip,
            user_agent: s.user_agent,
            remember_me: s.remember_me,
            current: s.id === principal.sessionId,
          })),
        );
      },
    )
    .delete(
      "/:id",
      describeRoute({
        summary: "Revoke one of my sessions",
        tags: ["sessions"],
        security: [{ bearer: [] }],
        responses: {
          204: { description: "Revoked" },
          404: { description: "No such session of yours" },
        },
      }),
      requirePermission("sessions:manage"),
      validate("param", SessionParam),
      async (c) => {
        const principal = requireSession(c);
        await sessions.revokeOwnSession(principal.userId, c.req.valid("param").id);
        await audit.record({
          type: "session.revoked",
          outcome: "success",
          userId: principal.userId,
          meta: requestMeta(c),
          details: { session_id: c.req.valid("param").id },
        });
        return c.body(null, 204);
      },
    );
}
