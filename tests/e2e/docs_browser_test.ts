import type { Request } from "playwright-core";
import { assert, assertEquals, assertMatch } from "../_helpers/assert.ts";
import { startTestServer } from "./_server.ts";
import { CHROMIUM, hasChromium, launchChromium } from "../_helpers/browser.ts";

/** One `securitypolicyviolation` event, as plain data. */
interface Violation {
  directive: string;
  blockedURI: string;
  sample: string;
}

/** Runs in the page before its own scripts: keeps every CSP violation event. */
const RECORD_VIOLATIONS = `
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push({
    directive: e.violatedDirective,
    blockedURI: e.blockedURI,
    sample: e.sample,
  });
});`;

/** True for URLs that stay on this machine (or never hit the network at all). */
function isLocal(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  if (protocol === "data:" || protocol === "blob:" || protocol === "about:") return true;
  return hostname === "127.0.0.1" || hostname === "localhost" || hostname === "[::1]";
}

/** Registers a fresh account over HTTP and returns its access token. */
async function signUpAndLogIn(origin: string): Promise<string> {
  const user = {
    email: `docs-${crypto.randomUUID()}@example.com`,
    password: `Docs-${crypto.randomUUID()}-pass!`,
  };
  const post = (path: string, body: unknown) =>
    fetch(`${origin}${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  const reg = await post("/auth/register", user);
  assertEquals(reg.status, 201, await reg.text());
  const login = await post("/auth/login", user);
  const body = await login.json();
  assertEquals(login.status, 200, JSON.stringify(body));
  return String(body.access_token);
}

const chromiumFound = hasChromium();

Deno.test({
  name: chromiumFound
    ? "/docs renders Swagger UI in Chromium under its CSP, offline, and Try it out works with a token"
    : `/docs in Chromium (skipped: ${CHROMIUM} not found, so no real browser can run)`,
  ignore: !chromiumFound,
  async fn() {
    await using api = await startTestServer();
    const browser = await launchChromium();
    try {
      const context = await browser.newContext();
      const requests: string[] = [];
      const outside: string[] = [];
      // Anything bound off loopback is recorded and refused, so a failure cannot leak either.
      await context.route("**/*", (route) => {
        const url = route.request().url();
        if (isLocal(url)) return route.continue();
        outside.push(url);
        return route.abort("blockedbyclient");
      });
      context.on("request", (req: Request) => requests.push(req.url()));
      const consoleCsp: string[] = [];
      const pageErrors: string[] = [];
      const page = await context.newPage();
      page.setDefaultTimeout(20_000);
      page.on("console", (msg) => {
        if (/content security policy/i.test(msg.text())) consoleCsp.push(msg.text());
      });
      page.on("pageerror", (error) => pageErrors.push(error.message));
      await page.addInitScript({ content: RECORD_VIOLATIONS });
      const assertClean = async (stage: string) => {
        const violations: Violation[] = JSON.parse(
          await page.evaluate<string>("JSON.stringify(window.__cspViolations)"),
        );
        assertEquals(violations, [], `CSP violations reported by the page ${stage}`);
        assertEquals(consoleCsp, [], `CSP messages in the console ${stage}`);
        assertEquals(pageErrors, [], `uncaught errors in the page ${stage}`);
        assertEquals(outside, [], `requests that left loopback ${stage}`);
      };

      const res = await page.goto(`${api.origin}/docs`);
      assert(res !== null);
      assertEquals(res.status(), 200);
      const csp = res.headers()["content-security-policy"] ?? "";
      assertMatch(csp, /script-src 'nonce-[^']+'/);
      assert(!csp.includes("unsafe-inline") && !csp.includes("unsafe-eval"), csp);

      // The operations list, rendered from /openapi.json.
      const health = page.locator('.opblock-get:has(.opblock-summary-path[data-path="/health"])');
      await health.waitFor();
      const operations = await page.locator(".opblock").count();
      assert(operations >= 10, `only ${operations} operations rendered`);
      await assertClean("after rendering");

      // "Try it out" on GET /health reaches the service (connect-src 'self').
      await health.locator(".opblock-summary").click();
      await health.getByRole("button", { name: "Try it out" }).click();
      await health.getByRole("button", { name: "Execute" }).click();
      const live = health.locator(".live-responses-table .response");
      await live.waitFor();
      assertEquals((await live.locator(".response-col_status").innerText()).trim(), "200");
      assertMatch(await live.locator(".response-col_description").innerText(), /"status":\s*"ok"/);

      await assertClean("after Try it out");

      // Authorize with a real access token, then call a Bearer-only route from the page.
      const access = await signUpAndLogIn(api.origin);
      await page.locator(".auth-wrapper .authorize").click();
      const bearer = page.locator(".auth-container").filter({
        has: page.locator("#auth-bearer-value"),
      });
      await bearer.locator("#auth-bearer-value").fill(access);
      // A real <form> submit: Swagger UI must handle it in script (form-action 'none').
      await bearer.getByRole("button", { name: "Apply credentials" }).click();
      await page.locator(".modal-ux .close-modal").click();
      const sessions = page.locator(
        '.opblock-get:has(.opblock-summary-path[data-path="/auth/sessions"])',
      );
      await sessions.locator(".opblock-summary").click();
      await sessions.getByRole("button", { name: "Try it out" }).click();
      await sessions.getByRole("button", { name: "Execute" }).click();
      const listed = sessions.locator(".live-responses-table .response");
      await listed.waitFor();
      assertEquals((await listed.locator(".response-col_status").innerText()).trim(), "200");
      assertMatch(
        await listed.locator(".response-col_description").innerText(),
        /"current":\s*true/,
      );
      await assertClean("after an authorized call");
      for (const path of ["/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/openapi.json"]) {
        assert(
          requests.some((url) => new URL(url).pathname === path),
          `${path} was not requested`,
        );
      }
      await context.close();
    } finally {
      await browser.close();
    }
  },
});
