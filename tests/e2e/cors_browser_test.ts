import type { Browser } from "playwright-core";
import { assert, assertEquals, assertMatch } from "../_helpers/assert.ts";
import { startTestServer } from "./_server.ts";
import { CHROMIUM, hasChromium, launchChromium } from "../_helpers/browser.ts";

const PAGE_HTML = "<!doctype html><meta charset=utf-8><title>cors e2e</title><p>cors e2e</p>";

/** What the page reports about its cross-origin fetch; plain data, so it survives `evaluate`. */
type FetchOutcome =
  | { ok: true; status: number; body: unknown; requestId: string | null }
  | { ok: false; name: string; message: string };

/** A static page server on its own loopback port, i.e. its own origin. */
function servePage(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const { pathname } = new URL(req.url);
    if (pathname !== "/") return new Response("not found", { status: 404 });
    return new Response(PAGE_HTML, { headers: { "Content-Type": "text/html; charset=utf-8" } });
  });
}

/** Opens `pageOrigin` in a fresh context and runs a credentialed, preflighted fetch of `/health`. */
async function fetchFromPage(
  browser: Browser,
  pageOrigin: string,
  apiOrigin: string,
): Promise<FetchOutcome> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(`${pageOrigin}/`);
    return await page.evaluate(async (api: string): Promise<FetchOutcome> => {
      try {
        // X-Request-ID is not CORS-safelisted, so the browser sends a preflight first.
        const res = await fetch(`${api}/health`, {
          credentials: "include",
          headers: { "X-Request-ID": "abc" },
        });
        return {
          ok: true,
          status: res.status,
          body: await res.json(),
          requestId: res.headers.get("X-Request-ID"),
        };
      } catch (error) {
        const e = error instanceof Error ? error : new Error(String(error));
        return { ok: false, name: e.name, message: e.message };
      }
    }, apiOrigin);
  } finally {
    await context.close();
  }
}

const chromiumFound = hasChromium();

Deno.test({
  name: chromiumFound
    ? "CORS in Chromium allows a credentialed preflighted fetch only from a configured origin"
    : `CORS in Chromium (skipped: ${CHROMIUM} not found, so no real browser can run)`,
  ignore: !chromiumFound,
  async fn(t) {
    await using allowedPages = servePage();
    await using otherPages = servePage();
    // "localhost" vs the API's "127.0.0.1": same machine, different origin.
    const allowedOrigin = `http://localhost:${allowedPages.addr.port}`;
    const disallowedOrigin = `http://localhost:${otherPages.addr.port}`;
    await using api = await startTestServer({ CORS_ORIGINS: allowedOrigin });

    const browser = await launchChromium();
    try {
      const gets = () =>
        api.logger.lines.filter((l) => /"method":"GET".*"path":"\/health"/.test(l)).length;
      const preflights = () =>
        api.logger.lines.filter((l) => /"method":"OPTIONS".*"path":"\/health"/.test(l)).length;

      await t.step(
        "a configured origin gets 200, the body and the exposed X-Request-ID",
        async () => {
          const outcome = await fetchFromPage(browser, allowedOrigin, api.origin);
          assert(
            outcome.ok,
            `fetch failed: ${outcome.ok ? "" : `${outcome.name}: ${outcome.message}`}`,
          );
          assertEquals(outcome.status, 200);
          assertEquals(outcome.body, { status: "ok" });
          assertEquals(outcome.requestId, "abc");
          assertEquals(preflights(), 1);
          assertEquals(gets(), 1);
        },
      );

      await t.step("another origin's fetch is blocked after the preflight", async () => {
        const outcome = await fetchFromPage(browser, disallowedOrigin, api.origin);
        assert(!outcome.ok, "a disallowed origin could read the response");
        assertEquals(outcome.name, "TypeError");
        assertMatch(outcome.message, /fetch/i);
        // The preflight was refused, so the browser never sent the GET itself.
        assertEquals(preflights(), 2);
        assertEquals(gets(), 1);
      });
    } finally {
      await browser.close();
    }
  },
});
