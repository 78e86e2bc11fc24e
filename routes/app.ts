import { Hono } from "hono";
import type { AppEnv } from "../middleware/app_env.ts";
import { edge } from "../middleware/edge.ts";
import { guard } from "../middleware/guard.ts";
import { notFound, onError } from "../middleware/problem.ts";
import { recordRequestMetrics, refuseBlockedAccount, refuseBlockedIp } from "../middleware/ops.ts";
import { createServices } from "../services/container.ts";
import { adminRoutes } from "./admin.ts";
import { apiKeyRoutes } from "./api_keys.ts";
import { authRoutes } from "./auth.ts";
import type { Deps, Services } from "./deps.ts";
import { docsRoutes } from "./docs.ts";
import { emailVerificationRoutes } from "./email_verification.ts";
import { healthRoutes } from "./health.ts";
import { noteRoutes } from "./notes.ts";
import { adminOAuth2ClientRoutes } from "./admin/oauth2_clients.ts";
import { oauth2MetadataRoutes, oauth2Routes } from "./oauth2/mod.ts";
import { providerRoutes } from "./providers.ts";
import { passwordRoutes } from "./passwords.ts";
import { sessionRoutes } from "./sessions.ts";
import { uploadRoutes } from "./uploads.ts";
import { userRoutes } from "./users.ts";
import { metricsRoutes } from "./metrics.ts";
import { adminBlockRoutes } from "./admin/blocks.ts";

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
  const { metrics, blocks } = services.ops;
  app.use(edge({
    logger: deps.logger,
    trustProxy: config.trustProxy,
    corsOrigins: config.corsOrigins,
    xssProtection: config.xssProtection,
    bodyLimitBytes: config.bodyLimitBytes,
    // Route template, status class and latency of every request (when metrics are on).
    observe: metrics.enabled
      ? (c, seconds) => recordRequestMetrics(c, metrics, seconds)
      : undefined,
  }));
  // guard: a blocked address is refused before any other work; authenticate before
  // the limiter so an authenticated caller is keyed by user id (a bad token still
  // pays per IP); a blocked account or lockdown is refused before any rate budget is
  // spent; then the rate limit and the password-expiry refusal. Probes without a
  // credential skip it.
  app.use(guard({
    auth: services.auth,
    apiKeys: services.apiKeys,
    audit: services.audit,
    rates: services.rates,
    oauth2: services.oauth2,
    beforeAuthenticate: (c) => refuseBlockedIp(c, blocks),
    afterAuthenticate: (c) => refuseBlockedAccount(c, blocks),
  }));

  app.route("/", healthRoutes(deps));
  app.route("/auth/sessions", sessionRoutes(deps, services));
  app.route("/auth/password", passwordRoutes(deps, services));
  app.route("/auth/providers", providerRoutes(deps, services));
  app.route("/auth/verify-email", emailVerificationRoutes(deps, services));
  app.route("/auth", authRoutes(deps, services));
  app.route("/users", userRoutes(deps, services));
  app.route("/api-keys", apiKeyRoutes(deps, services));
  app.route("/uploads", uploadRoutes(deps, services));
  app.route("/notes", noteRoutes(deps, services));
  app.route("/admin", adminRoutes(deps, services));
  app.route("/oauth2", oauth2Routes(deps, services));
  app.route("/.well-known", oauth2MetadataRoutes(deps, services));
  app.route("/admin/oauth2/clients", adminOAuth2ClientRoutes(deps, services));
  app.route("/metrics", metricsRoutes(deps, services));
  app.route("/admin/blocks", adminBlockRoutes(deps, services));
  app.route("/", docsRoutes(deps, app));

  app.onError(onError);
  app.notFound(notFound);
  return app;
}
