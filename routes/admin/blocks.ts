import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../middleware/app_env.ts";
import { requestMeta, requirePermission, requirePrincipal } from "../../middleware/auth.ts";
import { validate } from "../../middleware/validate.ts";
import type { BlockRecord } from "../../services/ops/blocks.ts";
import type { Deps, Services } from "../deps.ts";
import { IdParam, jsonResponse, route, type RouteSpec } from "../_route.ts";

const CreateBody = z.strictObject({
  ip: z.string().trim().max(64).optional(),
  cidr: z.string().trim().max(64).optional(),
  user_id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/).optional(),
  minutes: z.number().int().min(1).max(30 * 24 * 60),
  reason: z.string().trim().min(1).max(500),
});

const BlockOut = z.object({
  id: z.string(),
  kind: z.enum(["ip", "cidr", "user"]),
  value: z.string(),
  reason: z.string(),
  created_at: z.iso.datetime(),
  expires_at: z.iso.datetime(),
  created_by: z.string(),
});

function doc(summary: string, responses: RouteSpec["responses"]) {
  return route({ summary, tags: ["admin"], auth: "bearer", responses });
}

function view(block: BlockRecord): z.infer<typeof BlockOut> {
  return { ...block };
}

/** `/admin/blocks`: list, add and lift IP, CIDR and user blocks (admin). */
export function adminBlockRoutes(_deps: Deps, services: Services): Hono<AppEnv> {
  const { blocks } = services.ops;
  return new Hono<AppEnv>()
    .use(requirePermission("users:manage"))
    .get(
      "/",
      doc("Active blocks", { 200: jsonResponse(z.array(BlockOut), "Blocks") }),
      async (c) => {
        return c.json((await blocks.list()).map(view));
      },
    )
    .post(
      "/",
      doc("Block an IP, a CIDR or a user for some minutes", {
        201: jsonResponse(BlockOut, "Created"),
      }),
      validate("json", CreateBody),
      async (c) => {
        const body = c.req.valid("json");
        const block = await blocks.add({
          ip: body.ip,
          cidr: body.cidr,
          userId: body.user_id,
          minutes: body.minutes,
          reason: body.reason,
          createdBy: `admin:${requirePrincipal(c).userId}`,
        }, requestMeta(c));
        c.header("Location", `/admin/blocks/${block.id}`);
        return c.json(view(block), 201);
      },
    )
    .delete(
      "/:id",
      doc("Lift a block", { 204: { description: "Lifted" } }),
      validate("param", IdParam),
      async (c) => {
        await blocks.remove(
          c.req.valid("param").id,
          `admin:${requirePrincipal(c).userId}`,
          requestMeta(c),
        );
        return c.body(null, 204);
      },
    );
}
