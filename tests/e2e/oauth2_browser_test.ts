import * as oauth from "oauth4webapi";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { GOOD_PASSWORD } from "../_helpers/accounts.ts";
import { hasChromium, launchChromium } from "../_helpers/browser.ts";
import { startTestServer } from "./_server.ts";

const chromiumFound = hasChromium();

/** The client's redirect endpoint: a page on its own loopback origin. */
function serveClient(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () =>
      new Response("<!doctype html><title>client</title><p>back at the client</p>", {
        headers: { "Content-Type": "text/html; charset=utf-8" },
      }),
  );
}

Deno.test({
  name: chromiumFound
    ? "the authorize login and consent pages work in Chromium under their CSP, back to the client with a code"
    : "the authorize pages in Chromium (skipped: /usr/bin/chromium is not installed)",
  ignore: !chromiumFound,
  async fn() {
    await using api = await startTestServer();
    const client = serveClient();
    try {
      const clientOrigin = `http://127.0.0.1:${client.addr.port}`;
      const redirectUri = `${clientOrigin}/cb`;
      const { services } = api.runtime;
      const meta = { ip: "127.0.0.1", userAgent: "test", requestId: "e2e" };
      const { client: registered } = await services.oauth2.createClient(
        {
          name: "Browser app",
          type: "public",
          redirectUris: [redirectUri],
          grantTypes: ["authorization_code"],
          scopes: ["profile:read"],
        },
        "admin",
        meta,
      );
      const email = `e2e-${crypto.randomUUID().slice(0, 8)}@example.com`;
      await services.auth.register({ email, password: GOOD_PASSWORD, displayName: "E2E" }, meta);
      const verifier = oauth.generateRandomCodeVerifier();
      const url = new URL(`${api.origin}/oauth2/authorize`);
      url.search = new URLSearchParams({
        response_type: "code",
        client_id: registered.id,
        redirect_uri: redirectUri,
        scope: "profile:read",
        state: "e2e-state",
        code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: "S256",
      }).toString();

      await using browser = await launchChromium();
      const context = await browser.newContext();
      const page = await context.newPage();
      page.setDefaultTimeout(15_000);
      const violations: string[] = [];
      page.on("console", (m) => {
        if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
      });
      await page.goto(url.href);
      // The nonce'd stylesheet applied: the body is narrowed by it.
      assertEquals(await page.evaluate("getComputedStyle(document.body).maxWidth"), "448px");
      await page.fill("#email", email);
      await page.fill("#password", GOOD_PASSWORD);
      await page.click("button[type=submit]");
      await page.waitForSelector("button[value=approve]");
      assert((await page.content()).includes("See your profile"));
      await page.click("button[value=approve]");
      await page.waitForURL((u) => u.origin === clientOrigin);
      const back = new URL(page.url());
      assertEquals(back.pathname, "/cb");
      assertEquals(back.searchParams.get("state"), "e2e-state");
      assert((back.searchParams.get("code") ?? "").length >= 43);
      assertEquals(violations, []);
      await context.close();
    } finally {
      await client.shutdown();
    }
  },
});
