import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../middleware/app_env.ts";
import { requestMeta, requireCan, requirePrincipal } from "../middleware/auth.ts";
import { validate } from "../middleware/validate.ts";
import { ROLES } from "../services/auth/permissions.ts";
import { AUDIT_EVENT_TYPES } from "../services/core/audit_events.ts";
import { ValidationError } from "../services/core/errors.ts";
import type { Deps, Services } from "./deps.ts";
import { Cursor, IdParam, jsonResponse, Limit, pageOf, route, type RouteSpec } from "./_route.ts";

const UsersQuery = z.strictObject({
  q: z.string().trim().max(254).optional().describe(
    "Prefix of the normalised (NFKC, lowercase) email or display name",
  ),
  role: z.enum(ROLES).optional(),
  cursor: Cursor,
  limit: Limit,
});
const UserPatch = z.strictObject({
  role: z.enum(ROLES).optional(),
  disabled: z.boolean().optional(),
}).refine((b) => Object.keys(b).length > 0, "Give role or disabled");
const AuditQuery = z.strictObject({
  type: z.enum(AUDIT_EVENT_TYPES).optional(),
  user_id: IdParam.shape.id.optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  cursor: Cursor,
  limit: Limit,
});

const AdminUserOut = z.object({
  id: z.string(),
  email: z.string(),
  display_name: z.string().nullable(),
  role: z.enum(ROLES),
  disabled: z.boolean(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
  password_changed_at: z.iso.datetime(),
  bio: z.string().nullable(),
  website: z.string().nullable(),
});
const AuditOut = z.object({
  id: z.string(),
  at: z.iso.datetime(),
  type: z.enum(AUDIT_EVENT_TYPES),
  outcome: z.enum(["success", "failure"]),
  user_id: z.string().optional(),
  ip: z.string().optional(),
  request_id: z.string().optional(),
  details: z.record(z.string(), z.unknown()),
});

function doc(summary: string, responses: RouteSpec["responses"]) {
  return route({ summary, tags: ["admin"], auth: "bearer_or_api_key", responses });
}

/**
 * `/admin`: accounts (read: `users:read`, moderators up; change: `users:manage`) and the
 * audit trail (`audit:read`). Each right is decided by the policy module.
 */
export function adminRoutes(_deps: Deps, services: Services): Hono<AppEnv> {
  const { accounts, auditLog } = services;
  return new Hono<AppEnv>()
    .get(
      "/users",
      doc("List or search accounts (prefix of email or display name)", {
        200: jsonResponse(pageOf(AdminUserOut), "A page of accounts"),
      }),
      requireCan("users:read"),
      validate("query", UsersQuery),
      async (c) => {
        const query = c.req.valid("query");
        return c.json(
          await accounts.list(requirePrincipal(c), {
            q: query.q,
            role: query.role,
            cursor: query.cursor,
            limit: query.limit ?? 20,
          }),
        );
      },
    )
    .get(
      "/users/:id",
      doc("Read an account", { 200: jsonResponse(AdminUserOut, "The account") }),
      requireCan("users:read"),
      validate("param", IdParam),
      async (c) => c.json(await accounts.get(requirePrincipal(c), c.req.valid("param").id)),
    )
    .patch(
      "/users/:id",
      doc("Change role or disabled; either revokes every session and API key of the account", {
        200: jsonResponse(AdminUserOut, "The account"),
      }),
      requireCan("users:manage"),
      validate("param", IdParam),
      validate("json", UserPatch),
      async (c) => {
        const body = c.req.valid("json");
        const by = { kind: "user" as const, actor: requirePrincipal(c), meta: requestMeta(c) };
        return c.json(await accounts.update(by, c.req.valid("param").id, body));
      },
    )
    .post(
      "/users/:id/unlock",
      doc("Clear an account's failed logins and lock", { 204: { description: "Unlocked" } }),
      requireCan("users:manage"),
      validate("param", IdParam),
      async (c) => {
        await accounts.unlock(requirePrincipal(c), c.req.valid("param").id, requestMeta(c));
        return c.body(null, 204);
      },
    )
    .get(
      "/audit",
      doc("Audit events, newest first", { 200: jsonResponse(pageOf(AuditOut), "A page") }),
      requireCan("audit:read"),
      validate("query", AuditQuery),
      async (c) => {
        const query = c.req.valid("query");
        const since = query.since === undefined ? undefined : new Date(query.since);
        const until = query.until === undefined ? undefined : new Date(query.until);
        if (since !== undefined && until !== undefined && since > until) {
          throw new ValidationError("Request validation failed", {
            errors: [{ path: "since", message: "Must not be after until" }],
          });
        }
        return c.json(
          await auditLog.list({
            type: query.type,
            userId: query.user_id,
            since,
            until,
            cursor: query.cursor,
            limit: query.limit ?? 20,
          }),
        );
      },
    );
}
