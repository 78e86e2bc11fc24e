/**
 * Property tests: whatever a client sends to a JSON route, the answer is a
 * deliberate one (never a 500) and every error is problem+json.
 */
import fc from "fast-check";
import { signUp } from "../_helpers/accounts.ts";
import { assert } from "../_helpers/assert.ts";
import { bearer } from "../_helpers/http.ts";
import { openWorld } from "../_helpers/world.ts";

const ROUTES: readonly [method: string, path: string, authed: boolean][] = [
  ["POST", "/auth/register", false],
  ["POST", "/auth/login", false],
  ["POST", "/auth/refresh", false],
  ["POST", "/auth/password/forgot", false],
  ["POST", "/auth/password/reset", false],
  ["POST", "/auth/password/change", true],
  ["POST", "/api-keys", true],
  ["POST", "/api-keys/AAAAAAAAAAAAAAAAAAAAAA/rotate", true],
  ["PATCH", "/users/me", true],
  ["POST", "/notes", true],
  ["PATCH", "/notes/AAAAAAAAAAAAAAAAAAAAAA", true],
];

Deno.test("JSON routes answer random bodies without a 500", async (t) => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  for (const [method, path, authed] of ROUTES) {
    await t.step(`${method} ${path}`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.jsonValue().map((v) => JSON.stringify(v)),
            fc.string({ unit: "binary", maxLength: 200 }),
            fc.record({
              email: fc.oneof(fc.string(), fc.emailAddress()),
              password: fc.string({ unit: "binary" }),
              refresh_token: fc.string(),
              token: fc.string(),
              name: fc.string(),
              scopes: fc.array(fc.string()),
            }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
          ),
          fc.constantFrom("application/json", "application/json; charset=utf-8", "text/plain"),
          async (body, type) => {
            const headers: Record<string, string> = { "content-type": type };
            if (authed) Object.assign(headers, bearer(s.access));
            const res = await w.app.request(path, { method, headers, body });
            const text = await res.text();
            assert(
              res.status < 500,
              `${res.status} for ${JSON.stringify(body).slice(0, 80)}: ${text}`,
            );
            if (res.status >= 400) {
              assert(res.headers.get("content-type")?.startsWith("application/problem+json"));
              assert(!/at \w+ \(|file:\/\/|node_modules|zod|hono/i.test(text), text);
            }
          },
        ),
        { numRuns: 60 },
      );
    });
  }
});

Deno.test("POST /uploads answers random files and names without a 500", async () => {
  await using w = await openWorld({ env: { RATE_LIMIT_UPLOADS: "100000/minute" } });
  const s = await signUp(w.app);
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 2048 }),
      fc.string({ unit: "binary", maxLength: 300 }),
      async (bytes, name) => {
        const form = new FormData();
        form.append("file", new File([bytes as BlobPart], name));
        const res = await w.app.request("/uploads", {
          method: "POST",
          body: form,
          headers: bearer(s.access),
        });
        const text = await res.text();
        assert(res.status < 500, `${res.status} for ${JSON.stringify(name)}: ${text}`);
      },
    ),
    { numRuns: 80 },
  );
});
