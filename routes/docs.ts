import { type Hono, Hono as HonoApp } from "hono";
import { openAPIRouteHandler } from "hono-openapi";
import swaggerUiPackage from "swagger-ui-dist/package.json" with { type: "json" };
import type { AppEnv } from "../middleware/app_env.ts";
import type { Deps } from "./deps.ts";
import { VERSION } from "../version.ts";

const CSS_PATH = "/docs/swagger-ui.css";
const BUNDLE_PATH = "/docs/swagger-ui-bundle.js";
/** The asset URLs carry Swagger UI's version, so a year of `immutable` caching is safe. */
const ASSET_QUERY = `?v=${encodeURIComponent(swaggerUiPackage.version)}`;
const ASSET_CACHE = "public, max-age=31536000, immutable";

/**
 * `GET /openapi.json`, generated from the routes' own zod schemas, and
 * `GET /docs`, Swagger UI (npm `swagger-ui-dist`) served by the service itself
 * under a nonce-based CSP. `/docs` and its assets exist only when `docsEnabled`.
 */
export function docsRoutes(deps: Deps, root: Hono<AppEnv>): Hono<AppEnv> {
  const app = new HonoApp<AppEnv>().get(
    "/openapi.json",
    openAPIRouteHandler(root, {
      documentation: {
        openapi: "3.1.0",
        info: {
          title: "Bulwark",
          version: VERSION,
          description: "Security-first authentication and authorization API",
        },
        servers: [{ url: deps.config.publicUrl }],
        components: {
          securitySchemes: {
            bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
            apiKey: { type: "apiKey", in: "header", name: "X-API-Key" },
          },
        },
      },
      exclude: ["/openapi.json", "/docs", CSS_PATH, BUNDLE_PATH],
    }),
  );
  if (deps.config.docsEnabled) {
    app.get("/docs", (c) => {
      const nonce = crypto.getRandomValues(new Uint8Array(16)).toBase64();
      c.header("Content-Security-Policy", docsCsp(nonce));
      return c.html(docsPage(nonce));
    });
    // Swagger UI's prebuilt browser files, imported as text with literal specifiers: they are in
    // the module graph, so `deno compile` embeds them and nothing is read from disk or fetched
    // from a CDN at runtime; loaded on first request, so start-up neither parses nor holds them.
    app.get(CSS_PATH, async (c) => {
      const { default: css } = await import("swagger-ui-dist/swagger-ui.css", {
        with: { type: "text" },
      });
      c.header("Cache-Control", ASSET_CACHE);
      return c.body(css, 200, { "Content-Type": "text/css; charset=utf-8" });
    });
    app.get(BUNDLE_PATH, async (c) => {
      const { default: bundle } = await import("swagger-ui-dist/swagger-ui-bundle.js", {
        with: { type: "text" },
      });
      c.header("Cache-Control", ASSET_CACHE);
      return c.body(bundle, 200, { "Content-Type": "text/javascript; charset=utf-8" });
    });
  }
  return app;
}

/**
 * The page's CSP. Scripts only with this response's nonce (the bundle tag carries it too);
 * styles from the service's own stylesheet (Swagger UI's React styles go through the CSSOM,
 * which `style-src` does not govern); its icons are `data:` SVGs; "Try it out" calls the
 * service itself. Nothing may load from, connect to, frame or be framed by another origin.
 */
export function docsCsp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

function docsPage(nonce: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bulwark API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${CSS_PATH}${ASSET_QUERY}">
</head>
<body><div id="swagger-ui"></div>
<script nonce="${nonce}" src="${BUNDLE_PATH}${ASSET_QUERY}"></script>
<script nonce="${nonce}">
"use strict";
// "Try it out" may only call this page's own origin (connect-src 'self'), so the explorer
// targets the origin it was loaded from rather than the document's PUBLIC_URL server.
fetch("/openapi.json")
  .then((res) => {
    if (!res.ok) throw new Error("GET /openapi.json answered " + res.status);
    return res.json();
  })
  .then((spec) => {
    spec.servers = [{ url: location.origin, description: "this service" }];
    window.ui = SwaggerUIBundle({
      spec,
      dom_id: "#swagger-ui",
      validatorUrl: null,
      deepLinking: false,
      tryItOutEnabled: false,
    });
  })
  .catch((error) => {
    const p = document.createElement("p");
    p.textContent = "Could not load the API description: " + error.message;
    document.getElementById("swagger-ui").append(p);
  });
</script></body></html>`;
}
