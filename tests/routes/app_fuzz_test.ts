/**
 * Property tests: whatever a client sends to any route of the OpenAPI document (JSON bodies,
 * OAuth2 forms, path and query parameters), the answer is a deliberate one (never a 500), every
 * error is problem+json without internals, and a refused request changes no domain state.
 * `FUZZ_RUNS` sets the inputs per route (40 here, 300 in `deno task security`).
 */
import fc from "fast-check";
import { signUp } from "../_helpers/accounts.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { bearer } from "../_helpers/http.ts";
import { openWorld } from "../_helpers/world.ts";

/** Routes whose body the OpenAPI document does not describe (they read it themselves). */
const UNDESCRIBED: readonly Operation[] = [
  { method: "POST", path: "/auth/refresh", json: true, form: false, authed: false, query: [] },
];

/** Collections a refusal may legitimately write: audit trail, throttling and usage counters. */
const BOOKKEEPING =
  /^(audit|login_failures|rate|refusal|api_key_usage|api_key_last_use|health|login_blocks|revocations|mail_budgets|intrusion_counters|alert_dedup|blocks|ops_state)/;

/** How many random inputs per route (`deno task security` raises it). */
const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? "40");

interface Operation {
  method: string;
  /** With `{param}` already replaced by a value to fuzz. */
  path: string;
  json: boolean;
  form: boolean;
  authed: boolean;
  query: string[];
}

interface OpenApiOperation {
  requestBody?: { content?: Record<string, unknown> };
  parameters?: Array<{ in: string; name: string }>;
  security?: unknown[];
}

/** Every operation of /openapi.json: routes added later are fuzzed without editing this file. */
async function operations(app: { request(path: string): Response | Promise<Response> }) {
  const doc = await (await app.request("/openapi.json")).json() as {
    paths: Record<string, Record<string, OpenApiOperation>>;
  };
  const ops: Operation[] = [...UNDESCRIBED];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const content = Object.keys(op.requestBody?.content ?? {});
      ops.push({
        method: method.toUpperCase(),
        path,
        json: content.includes("application/json"),
        form: content.includes("application/x-www-form-urlencoded"),
        authed: (op.security ?? []).length > 0,
        query: (op.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name),
      });
    }
  }
  return ops;
}

/** Keys and versionstamps of every non-bookkeeping entry: the state a refusal must not touch. */
async function domainState(kv: Deno.Kv): Promise<string> {
  const parts: string[] = [];
  for await (const entry of kv.list({ prefix: [] })) {
    if (BOOKKEEPING.test(String(entry.key[0]))) continue;
    parts.push(`${JSON.stringify(entry.key)}@${entry.versionstamp}`);
  }
  return parts.join("\n");
}

const jsonBody = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.record({
    email: fc.oneof(fc.string(), fc.emailAddress()),
    password: fc.string({ unit: "binary" }),
    refresh_token: fc.string(),
    token: fc.string(),
    name: fc.string(),
    scopes: fc.array(fc.string()),
    q: fc.string(),
  }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
);

const formBody = fc.dictionary(
  fc.constantFrom(
    "grant_type",
    "username",
    "password",
    "scope",
    "client_id",
    "code",
    "redirect_uri",
    "x",
  ),
  fc.string({ unit: "binary", maxLength: 80 }),
).map((d) => new URLSearchParams(d).toString());

const hostile = fc.oneof(
  fc.string({ unit: "binary", maxLength: 60 }),
  fc.constantFrom(
    "'",
    "' OR '1'='1",
    "%",
    "_",
    "*",
    "../../etc/passwd",
    "<script>",
    "\u0000",
    "9".repeat(40),
  ),
);

Deno.test("every route in /openapi.json answers random input without a 500, a leak or a state change", async (t) => {
  // Rate limits off: a 429 would stand in for what the route does with the input.
  await using w = await openWorld({ env: { RATE_LIMIT_ENABLED: "false" } });
  const ops = await operations(w.app);
  for (const expected of ["POST /auth/login", "POST /auth/register", "POST /api-keys"]) {
    assert(
      ops.some((o) => `${o.method} ${o.path}` === expected),
      `${expected} missing from the spec`,
    );
  }
  for (const op of ops) {
    await t.step(`${op.method} ${op.path}`, async () => {
      // A fresh account per route: logout-all on one route must not blunt the next.
      const s = await signUp(w.app);
      const kinds = [
        ...(op.json || op.method !== "GET" ? ["application/json", "text/plain"] : []),
        ...(op.form ? ["application/x-www-form-urlencoded"] : []),
      ];
      await fc.assert(
        fc.asyncProperty(
          jsonBody,
          formBody,
          fc.constantFrom(...(kinds.length === 0 ? ["none"] : kinds)),
          hostile,
          fc.array(hostile, { minLength: op.query.length, maxLength: op.query.length }),
          async (json, form, type, id, queryValues) => {
            const url = new URL(
              op.path.replace(/\{[^}]+\}/g, encodeURIComponent(id)),
              "http://local",
            );
            op.query.forEach((name, i) => url.searchParams.set(name, queryValues[i] ?? ""));
            const headers: Record<string, string> = {};
            if (op.authed) Object.assign(headers, bearer(s.access));
            let body: string | undefined;
            if (type !== "none") {
              headers["content-type"] = type;
              body = type === "application/x-www-form-urlencoded" ? form : json;
            }
            const before = await domainState(w.kv);
            const res = await w.app.request(url.pathname + url.search, {
              method: op.method,
              headers,
              ...(body === undefined || op.method === "GET" ? {} : { body }),
            });
            const text = await res.text();
            assert(
              res.status < 500,
              `${res.status} for ${JSON.stringify([body, id]).slice(0, 120)}: ${text}`,
            );
            if (res.status >= 400) {
              const type = res.headers.get("content-type") ?? "";
              // API.md: OAuth2 endpoints answer RFC 6749 errors (JSON) or, for the
              // browser-facing authorize pages, HTML; everything else is problem+json.
              const expected = /^\/oauth2\/(token|introspect|revoke|authorize)/.test(url.pathname)
                ? /^(application\/json|text\/html)/
                : /^application\/problem\+json/;
              assert(expected.test(type), `${type}: ${text}`);
              // Random tokens (CSP nonces, CSRF values) are cut out first: 43 random
              // base64url characters can spell "ZOd" or "deNo" by chance.
              const words = text.replace(/[A-Za-z0-9_-]{16,}/g, "");
              assert(!/at \w+ \(|file:\/\/|node_modules|zod|hono|deno|stack/i.test(words), text);
              assertEquals(await domainState(w.kv), before, `${res.status} changed state: ${text}`);
            }
          },
        ),
        { numRuns: RUNS },
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
