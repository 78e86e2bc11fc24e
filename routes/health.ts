import { Hono } from "hono";
import { describeRoute, resolver } from "hono-openapi";
import { z } from "zod";
import type { AppEnv } from "../middleware/app_env.ts";
import { createHealthService } from "../services/core/health.ts";
import type { Deps } from "./deps.ts";

const StatusSchema = z.object({ status: z.enum(["ok", "unavailable"]) });

/** `GET /health` (liveness, no store access) and `GET /ready` (store round trip). */
export function healthRoutes(deps: Deps): Hono<AppEnv> {
  const health = createHealthService(deps);
  const ok = {
    200: { description: "OK", content: { "application/json": { schema: resolver(StatusSchema) } } },
  };
  return new Hono<AppEnv>()
    .get(
      "/health",
      describeRoute({ summary: "Liveness", tags: ["service"], responses: ok }),
      (c) => c.json({ status: "ok" }),
    )
    .get(
      "/ready",
      describeRoute({
        summary: "Readiness: the store answers",
        tags: ["service"],
        responses: { ...ok, 503: { description: "Store unavailable" } },
      }),
      async (c) => {
        await health.checkStore();
        return c.json({ status: "ok" });
      },
    );
}
