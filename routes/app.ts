import { Hono } from "hono";
import type { AppEnv } from "../middleware/app_env.ts";
import { edge } from "../middleware/edge.ts";
import { guard } from "../middleware/guard.ts";
import { notFound, onError } from "../middleware/problem.ts";
import { createServices } from "../services/container.ts";
import { apiKeyRoutes } from "./api_keys.ts";
import { authRoutes } from "./auth.ts";
import type { Deps, Services } from "./deps.ts";
import { docsRoutes } from "./docs.ts";
import { healthRoutes } from "./health.ts";
import { passwordRoutes } from "./passwords.ts";
import { sessionRoutes } from "./sessions.ts";
import { uploadRoutes } from "./uploads.ts";
import { userRoutes } from "./users.ts";

/**
 * Builds the Bulwark app. The only place that orders middleware, mounts
 * route modules and registers the error handlers. `services` may be passed in
 * so the caller can drain them on shutdown.
 */
export function createApp(deps: Deps, services: Services = createServices(deps)): Hono<AppEnv> {
  const { config } = deps;
  const app = new Hono<AppEnv>();
  // Two cross-cutting layers, each one pass (every async layer costs /health
  // about a tenth of its throughput). edge: request id → CORS (preflights
  // answered) → body limit, and on the way out CORS and security headers,
  // X-Request-ID and the access log, on every response (DESIGN.md order).
  app.use(edge({
    logger: deps.logger,
    trustProxy: config.trustProxy,
    corsOrigins: config.corsOrigins,
    xssProtection: config.xssProtection,
    bodyLimitBytes: config.bodyLimitBytes,
  }));
  // guard: authenticate before the limiter so an authenticated caller is keyed
  // by user id (a bad token still pays per IP), then the rate limit and the
  // password-expiry refusal; probes without a credential skip it.
  app.use(guard({
    auth: services.auth,
    apiKeys: services.apiKeys,
    audit: services.audit,
    rates: services.rates,
  }));

  app.route("/", healthRoutes(deps));
  app.route("/auth/sessions", sessionRoutes(deps, services));
  app.route("/auth/password", passwordRoutes(deps, services));
  app.route("/auth", authRoutes(deps, services));
  app.route("/users", userRoutes(deps, services));
  app.route("/api-keys", apiKeyRoutes(deps, services));
  app.route("/uploads", uploadRoutes(deps, services));
  app.route("/", docsRoutes(deps, app));

  app.onError(onError);
  app.notFound(notFound);
  return app;
}
