import { Hono } from "hono";
import type { AppEnv } from "../middleware/app_env.ts";
import { requirePermission } from "../middleware/auth.ts";
import { sha256, timingSafeEqual } from "../services/core/crypto.ts";
import { NotFoundError } from "../services/core/errors.ts";
import type { Deps, Services } from "./deps.ts";
import { route } from "./_route.ts";

/**
 * `GET /metrics`: Prometheus text for a scraper holding `METRICS_TOKEN`, or
 * for an admin credential with `audit:read`; anyone else 401/403.
 */
export function metricsRoutes(deps: Deps, services: Services): Hono<AppEnv> {
  const { metrics } = services.ops;
  const token = deps.config.metricsToken;
  // Digests compare in constant time whatever the presented length.
  const tokenDigest = token === undefined ? null : sha256(token);
  const adminGuard = requirePermission("audit:read");
  return new Hono<AppEnv>().get(
    "/",
    route({
      summary: "Prometheus metrics of this instance",
      tags: ["operations"],
      auth: "bearer",
      responses: {
        200: {
          description: "Prometheus text exposition format",
          content: { "text/plain": { schema: { type: "string" } } },
        },
      },
    }),
    async (c, next) => {
      if (!metrics.enabled) throw new NotFoundError("Metrics are turned off");
      const match = /^Bearer (.+)$/i.exec(c.req.header("authorization")?.trim() ?? "");
      if (
        tokenDigest !== null && match !== null && timingSafeEqual(sha256(match[1]!), tokenDigest)
      ) {
        return await next();
      }
      return await adminGuard(c, next);
    },
    async (c) => {
      c.header("Content-Type", metrics.contentType);
      c.header("Cache-Control", "no-store");
      return c.body(await metrics.render());
    },
  );
}
