import { assert, assertEquals } from "../_helpers/assert.ts";
import { json } from "../_helpers/http.ts";
import { openWorld } from "../_helpers/world.ts";

Deno.test("GET /openapi.json documents the routes and /docs is nonce-protected", async (t) => {
  await t.step("development serves both", async () => {
    await using w = await openWorld();
    const { app } = w;
    const doc = await json(await app.request("/openapi.json"));
    assertEquals(doc.openapi, "3.1.0");
    assert("/health" in (doc.paths as Record<string, unknown>));
    const res = await app.request("/docs");
    assertEquals(res.status, 200);
    const csp = res.headers.get("content-security-policy") ?? "";
    const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
    assert(nonce !== undefined && !csp.includes("unsafe-inline"));
    const html = await res.text();
    assert(html.includes(`<script nonce="${nonce}">`));
  });
  await t.step("production hides /docs unless enabled", async () => {
    const prod = {
      APP_ENV: "production",
      CORS_ORIGINS: "https://app.example.com",
    };
    await using hidden = await openWorld({ env: prod });
    assertEquals((await hidden.app.request("/docs")).status, 404);
    await using enabled = await openWorld({ env: { ...prod, DOCS_ENABLED: "true" } });
    assertEquals((await enabled.app.request("/docs")).status, 200);
  });
});
