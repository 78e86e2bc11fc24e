import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../middleware/app_env.ts";
import { PROBE_POLICY } from "../middleware/route_policy.ts";
import { createHealthService } from "../services/core/health.ts";
import type { Deps } from "./deps.ts";
import { jsonResponse, route } from "./_route.ts";

const StatusSchema = z.object({ status: z.enum(["ok", "unavailable"]) });

/** `GET /health` (liveness, no store access) and `GET /ready` (store round trip). */
export function healthRoutes(deps: Deps): Hono<AppEnv> {
  const health = createHealthService(deps);
  const ok = jsonResponse(StatusSchema, "OK");
  return new Hono<AppEnv>()
    .get(
      "/health",
      route({
        summary: "Liveness",
        tags: ["service"],
        responses: { 200: ok },
        policy: PROBE_POLICY,
      }),
      (c) => c.json({ status: "ok" }),
    )
    .get(
      "/ready",
      route({
        summary: "Readiness: the store answers",
        tags: ["service"],
        responses: { 200: ok, 503: { description: "Store unavailable" } },
        policy: PROBE_POLICY,
      }),
      async (c) => {
        await health.checkStore();
        return c.json({ status: "ok" });
      },
    );
}
