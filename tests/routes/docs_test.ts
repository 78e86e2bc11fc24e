import { assert, assertEquals, assertMatch } from "../_helpers/assert.ts";
import { json } from "../_helpers/http.ts";
import { openWorld } from "../_helpers/world.ts";

const CSS = "/docs/swagger-ui.css";
const BUNDLE = "/docs/swagger-ui-bundle.js";

Deno.test("/docs serves Swagger UI from the service under a nonce CSP", async (t) => {
  await using w = await openWorld();
  const { app } = w;

  await t.step("the page: one fresh nonce per response, no unsafe-*, no other origin", async () => {
    const first = await app.request("/docs");
    assertEquals(first.status, 200);
    assertMatch(first.headers.get("content-type") ?? "", /^text\/html/);
    const csp = first.headers.get("content-security-policy") ?? "";
    const nonce = /script-src 'nonce-([A-Za-z0-9+/=]{22,})'/.exec(csp)?.[1];
    assert(nonce !== undefined, csp);
    const directives = new Map(
      csp.split(";").map((d) => d.trim().split(/\s+/)).map(([name, ...v]) => [name, v.join(" ")]),
    );
    assertEquals(Object.fromEntries(directives), {
      "default-src": "'none'",
      "script-src": `'nonce-${nonce}'`,
      "style-src": "'self'",
      "img-src": "'self' data:",
      "connect-src": "'self'",
      "base-uri": "'none'",
      "form-action": "'none'",
      "frame-ancestors": "'none'",
    });
    assert(!csp.includes("unsafe-"), csp);
    const html = await first.text();
    // Every <script> carries the nonce; nothing refers to another origin.
    const scripts = html.match(/<script\b[^>]*>/g) ?? [];
    assertEquals(scripts.length, 2);
    for (const tag of scripts) assert(tag.includes(`nonce="${nonce}"`), tag);
    assert(!/\b(src|href)="(https?:)?\/\//.test(html), "the page refers to another origin");
    assertMatch(html, new RegExp(`<link rel="stylesheet" href="${CSS}\\?v=[\\w.-]+">`));
    assert(html.includes(`<script nonce="${nonce}" src="${BUNDLE}?v=`), "bundle tag");

    const second = await app.request("/docs");
    const again = /'nonce-([^']+)'/.exec(second.headers.get("content-security-policy") ?? "")?.[1];
    assert(again !== undefined && again !== nonce, "the nonce was reused");
    // The page keeps the other security headers of API.md.
    assertEquals(first.headers.get("x-frame-options"), "DENY");
    assertEquals(first.headers.get("x-content-type-options"), "nosniff");
  });

  await t.step("the assets: right types, long cache, Swagger UI's own files", async () => {
    const css = await app.request(CSS);
    assertEquals(css.status, 200);
    assertEquals(css.headers.get("content-type"), "text/css; charset=utf-8");
    assertEquals(css.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assertEquals(css.headers.get("x-content-type-options"), "nosniff");
    assertMatch(await css.text(), /\.swagger-ui/);

    const js = await app.request(BUNDLE);
    assertEquals(js.status, 200);
    assertEquals(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    assertEquals(js.headers.get("cache-control"), "public, max-age=31536000, immutable");
    const bundle = await js.text();
    assert(bundle.length > 500_000, `bundle is only ${bundle.length} characters`);
    assertMatch(bundle, /SwaggerUIBundle/);
  });

  await t.step("/openapi.json does not list the docs routes", async () => {
    const doc = await json(await app.request("/openapi.json"));
    const paths = Object.keys(doc.paths as Record<string, unknown>);
    assert(paths.includes("/health"));
    for (const path of ["/docs", CSS, BUNDLE, "/openapi.json"]) assert(!paths.includes(path), path);
  });
});

Deno.test("with docsEnabled false, /docs and its assets do not exist", async () => {
  await using w = await openWorld({
    env: { APP_ENV: "production", CORS_ORIGINS: "https://app.example.com" },
  });
  for (const path of ["/docs", CSS, BUNDLE]) {
    assertEquals((await w.app.request(path)).status, 404, path);
  }
  assertEquals((await w.app.request("/openapi.json")).status, 200);
});
