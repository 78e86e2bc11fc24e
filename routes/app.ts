import { Hono } from "hono";
import type { AppEnv } from "../middleware/app_env.ts";
import { authenticate, enforcePasswordExpiry } from "../middleware/auth.ts";
import { bodyLimit } from "../middleware/body_limit.ts";
import { corsPolicy } from "../middleware/cors.ts";
import { notFound, onError } from "../middleware/problem.ts";
import { rateLimit } from "../middleware/rate_limit.ts";
import { requestContext } from "../middleware/request_context.ts";
import { securityHeaders } from "../middleware/security_headers.ts";
import { accountGuard, blockedIpGuard, requestMetrics } from "../middleware/ops.ts";
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
  // Order (DESIGN.md): request id → CORS → security headers → body limit.
  // Security headers are written on the way out, so they are mounted outside
  // CORS to cover the preflights CORS answers itself; CORS still decides first.
  app.use(requestContext({ logger: deps.logger, trustProxy: config.trustProxy }));
  const { metrics, blocks } = services.ops;
  if (metrics.enabled) app.use(requestMetrics({ metrics }));
  app.use(securityHeaders({ xssProtection: config.xssProtection }));
  app.use(corsPolicy({ origins: config.corsOrigins }));
  // Routes that declare `body: "stream"` (POST /uploads) count and cap their own bodies.
  // A blocked address is refused before any other work (API.md), from an in-memory view.
  app.use(blockedIpGuard({ blocks }));
  app.use(bodyLimit({ maxBytes: config.bodyLimitBytes }));
  // authenticate runs before the limiter so an authenticated caller is keyed by
  // user id; it never refuses by itself, so a bad token still pays per IP.
  app.use(authenticate({
    auth: services.auth,
    apiKeys: services.apiKeys,
    audit: services.audit,
    oauth2: services.oauth2,
  }));
  // Blocked users (423) and the lockdown kill switch (503), before any rate budget is spent.
  app.use(accountGuard({ blocks }));
  app.use(rateLimit({ policy: services.rates }));
  app.use(enforcePasswordExpiry());

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
