import { type Hono, Hono as HonoApp } from "hono";
import { openAPIRouteHandler } from "hono-openapi";
import type { AppEnv } from "../middleware/app_env.ts";
import type { Deps } from "./deps.ts";
import { VERSION } from "../version.ts";

/**
 * `GET /openapi.json`, generated from the routes' own zod schemas, and
 * `GET /docs`, a small self-contained explorer (no third-party scripts) under
 * a nonce-based CSP. `/docs` exists only when `docsEnabled`.
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
      exclude: ["/openapi.json", "/docs"],
    }),
  );
  if (deps.config.docsEnabled) {
    app.get("/docs", (c) => {
      const nonce = crypto.getRandomValues(new Uint8Array(16)).toBase64();
      c.header(
        "Content-Security-Policy",
        `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; ` +
          "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      );
      return c.html(docsPage(nonce));
    });
  }
  return app;
}

function docsPage(nonce: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bulwark API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="${nonce}">
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem}
details{border:1px solid #ccc;border-radius:6px;margin:.5rem 0;padding:.5rem}
summary{cursor:pointer}code{font-weight:600}pre{background:#f5f5f5;overflow:auto;padding:.5rem}
textarea,input{width:100%;font:13px monospace;box-sizing:border-box}
</style></head>
<body><h1>Bulwark API</h1><p>Generated from <a href="/openapi.json">/openapi.json</a>.</p>
<label>Bearer token <input id="token" autocomplete="off"></label>
<div id="ops"></div>
<script nonce="${nonce}">
"use strict";
const el = (tag, text) => { const e = document.createElement(tag); if (text) e.textContent = text; return e; };
fetch("/openapi.json").then((r) => r.json()).then((doc) => {
  const root = document.getElementById("ops");
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const box = el("details");
      const sum = el("summary"); sum.append(el("code", method.toUpperCase() + " " + path), " " + (op.summary || ""));
      box.append(sum);
      const body = op.requestBody && op.requestBody.content["application/json"];
      if (body) box.append(el("pre", JSON.stringify(body.schema, null, 2)));
      const url = el("input"); url.value = path; box.append(url);
      const input = el("textarea"); input.rows = 4; if (body) { input.value = "{}"; box.append(input); }
      const send = el("button", "Send"); const out = el("pre");
      send.addEventListener("click", async () => {
        const headers = { "Content-Type": "application/json" };
        const token = document.getElementById("token").value.trim();
        if (token) headers.Authorization = "Bearer " + token;
        const res = await fetch(url.value, { method: method.toUpperCase(), headers, body: body ? input.value : undefined });
        out.textContent = res.status + "\\n" + await res.text();
      });
      box.append(send, out); root.append(box);
    }
  }
});
</script></body></html>`;
}
