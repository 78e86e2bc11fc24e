import * as oauth from "oauth4webapi";
import { assert, assertEquals, assertMatch } from "../../_helpers/assert.ts";
import { GOOD_PASSWORD, signUp } from "../../_helpers/accounts.ts";
import { bearer, json } from "../../_helpers/http.ts";
import { decodeJwt } from "../../_helpers/jwt.ts";
import {
  admin,
  authorizationRequest,
  authorizeInBrowser,
  Browser,
  codeFlow,
  discover,
  formFields,
  ISSUER,
  oauthOptions,
  REDIRECT_URI,
  registerClient,
} from "../../_helpers/oauth2.ts";
import { auditTypes, openWorld } from "../../_helpers/world.ts";

Deno.test("GET /oauth2/authorize: full code+PKCE flow driven by oauth4webapi through the login and consent pages", async (t) => {
  await using w = await openWorld();
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token, {
    type: "public",
    grant_types: ["authorization_code", "refresh_token"],
  });
  const user = await signUp(w.app);
  const as = await discover(w.app);

  await t.step(
    "the login page is HTML with a nonce CSP, no inline handlers, a CSRF token and frame-ancestors 'none'",
    async () => {
      const req = await authorizationRequest(as, tc.client.client_id);
      const browser = new Browser(w.app);
      const res = await browser.request(req.url.href);
      assertEquals(res.status, 200);
      assertMatch(res.headers.get("content-type") ?? "", /^text\/html/);
      const csp = res.headers.get("content-security-policy") ?? "";
      assertMatch(csp, /style-src 'nonce-[A-Za-z0-9+/=]{20,}'/);
      assertMatch(csp, /frame-ancestors 'none'/);
      // Forms post here; the redirect after them may only go to the client's origin.
      assertMatch(csp, /form-action 'self' https:\/\/client\.example\.com;/);
      assert(!csp.includes("unsafe-inline"));
      assertEquals(res.headers.get("cache-control"), "no-store");
      assertEquals(res.headers.get("x-frame-options"), "DENY");
      const html = await res.text();
      assert(!/\son[a-z]+=/i.test(html), "no inline event handlers");
      assert(!/<script/i.test(html), "no scripts at all");
      const fields = formFields(html);
      assertMatch(fields.csrf_token ?? "", /^[A-Za-z0-9_-]{43}$/);
      assert(browser.cookies.has("__Host-bulwark_oauth2"), "browser binding cookie");
      const nonce = /nonce-([^']+)'/.exec(csp)![1]!;
      assert(html.includes(`nonce="${nonce}"`));
      // A second request gets another nonce.
      const again = await new Browser(w.app).request(req.url.href);
      assert(again.headers.get("content-security-policy") !== csp);
    },
  );

  let refreshToken = "";
  await t.step(
    "login → consent → code → tokens; the callback carries state and iss (RFC 9207)",
    async () => {
      const req = await authorizationRequest(as, tc.client.client_id, "profile:read notes:read");
      const browser = new Browser(w.app);
      const start = await browser.request(req.url.href);
      const login = await browser.post("/oauth2/authorize/login", {
        ...formFields(await start.text()),
        email: user.user.email,
        password: GOOD_PASSWORD,
      });
      assertEquals(login.status, 200);
      const consentHtml = await login.text();
      assert(consentHtml.includes("See your profile"), "scopes in words");
      assert(consentHtml.includes("Read your notes"));
      const cb = await browser.post("/oauth2/authorize/consent", {
        ...formFields(consentHtml),
        decision: "approve",
      });
      assertEquals(cb.status, 303);
      const callback = new URL(cb.headers.get("location")!);
      assertEquals(callback.origin + callback.pathname, REDIRECT_URI);
      assertEquals(callback.searchParams.get("iss"), ISSUER);
      const params = oauth.validateAuthResponse(as, tc.client, callback, req.state);
      const tokens = await oauth.processAuthorizationCodeResponse(
        as,
        tc.client,
        await oauth.authorizationCodeGrantRequest(
          as,
          tc.client,
          tc.auth,
          params,
          REDIRECT_URI,
          req.verifier,
          oauthOptions(w.app),
        ),
      );
      assertEquals(tokens.token_type.toLowerCase(), "bearer");
      assertEquals(tokens.expires_in, 600);
      assertEquals(tokens.scope, "profile:read notes:read");
      refreshToken = tokens.refresh_token ?? "";
      assert(refreshToken !== "");
      // RFC 9068 header and claims.
      const { header: h, payload: p } = decodeJwt(tokens.access_token);
      assertEquals(h.typ, "at+jwt");
      assertEquals(p.client_id, tc.client.client_id);
      assertEquals(p.sub, user.id);
      assertEquals(p.aud, ISSUER);
      assertEquals(p.scope, "profile:read notes:read");
      // Accepted by Bulwark's own API with that scope.
      const me = await w.app.request("/users/me", { headers: bearer(tokens.access_token) });
      assertEquals(me.status, 200);
      assertEquals((await json(me)).id, user.id);
      // ...and not beyond it.
      const keys = await w.app.request("/api-keys", { headers: bearer(tokens.access_token) });
      assertEquals(keys.status, 403);
    },
  );

  await t.step(
    "an approved consent is remembered: the next authorization skips the consent page",
    async () => {
      const req = await authorizationRequest(as, tc.client.client_id, "profile:read");
      const browser = new Browser(w.app);
      const start = await browser.request(req.url.href);
      const login = await browser.post("/oauth2/authorize/login", {
        ...formFields(await start.text()),
        email: user.user.email,
        password: GOOD_PASSWORD,
      });
      assertEquals(login.status, 303);
      const callback = new URL(login.headers.get("location")!);
      assert(callback.searchParams.has("code"));
    },
  );

  await t.step(
    "GET /oauth2/consents lists it; DELETE revokes the client's tokens for the user",
    async () => {
      const list = await w.app.request("/oauth2/consents", { headers: bearer(user.access) });
      assertEquals(list.status, 200);
      const consents = await list.json() as { client_id: string; scopes: string[] }[];
      assertEquals(consents.length, 1);
      assertEquals(consents[0]!.client_id, tc.client.client_id);
      assertEquals(consents[0]!.scopes, ["notes:read", "profile:read"]);
      const del = await w.app.request(`/oauth2/consents/${tc.client.client_id}`, {
        method: "DELETE",
        headers: bearer(user.access),
      });
      assertEquals(del.status, 204);
      const again = await w.app.request("/oauth2/consents", { headers: bearer(user.access) });
      assertEquals(await again.json(), []);
      const refreshed = await oauth.refreshTokenGrantRequest(
        as,
        tc.client,
        tc.auth,
        refreshToken,
        oauthOptions(w.app),
      );
      assertEquals(refreshed.status, 400);
      assertEquals((await json(refreshed)).error, "invalid_grant");
      const missing = await w.app.request(`/oauth2/consents/${tc.client.client_id}`, {
        method: "DELETE",
        headers: bearer(user.access),
      });
      assertEquals(missing.status, 404);
      const types = await auditTypes(w.kv);
      for (
        const type of [
          "oauth2.consent_granted",
          "oauth2.code_issued",
          "oauth2.code_redeemed",
          "oauth2.token_issued",
          "oauth2.consent_revoked",
          "oauth2.token_revoked",
        ]
      ) {
        assert(types.includes(type), type);
      }
    },
  );

  await t.step("deny redirects with access_denied and state", async () => {
    const req = await authorizationRequest(as, tc.client.client_id);
    const callback = await authorizeInBrowser(new Browser(w.app), req.url, {
      email: user.user.email,
      password: GOOD_PASSWORD,
    }, "deny");
    assertEquals(callback.searchParams.get("error"), "access_denied");
    assertEquals(callback.searchParams.get("state"), req.state);
    assertEquals(callback.searchParams.get("iss"), ISSUER);
  });
});

Deno.test("GET /oauth2/authorize refuses bad requests: never redirecting to an unregistered URI", async (t) => {
  await using w = await openWorld();
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token, {
    type: "public",
    grant_types: ["authorization_code"],
  });
  const as = await discover(w.app);

  async function authorize(change: (u: URL) => void): Promise<Response> {
    const { url } = await authorizationRequest(as, tc.client.client_id);
    change(url);
    return await new Browser(w.app).request(url.href);
  }

  await t.step(
    "redirect_uri mismatch is an error page, never followed: prefix, extra path, query, other host",
    async () => {
      for (
        const bad of [
          "https://client.example.com/callback/evil",
          "https://client.example.com/callbac",
          "https://client.example.com/callback?x=1",
          "https://client.example.com/callback#f",
          "https://client.example.com.evil.com/callback",
          "http://client.example.com/callback",
          "",
        ]
      ) {
        const res = await authorize((u) => u.searchParams.set("redirect_uri", bad));
        assertEquals(res.status, 400, bad);
        assertEquals(res.headers.get("location"), null);
        assertMatch(res.headers.get("content-type") ?? "", /^text\/html/);
      }
    },
  );

  await t.step("a repeated parameter is an error page, not a redirect", async () => {
    const res = await authorize((u) =>
      u.searchParams.append("redirect_uri", "https://evil.example.net/")
    );
    assertEquals(res.status, 400);
    assertEquals(res.headers.get("location"), null);
  });

  await t.step("an unknown client is an error page", async () => {
    const res = await authorize((u) => u.searchParams.set("client_id", "nope-nope-nope"));
    assertEquals(res.status, 400);
    assertEquals(res.headers.get("location"), null);
  });

  await t.step(
    "missing state → invalid_request at the redirect URI (no state echoed)",
    async () => {
      const res = await authorize((u) => u.searchParams.delete("state"));
      assertEquals(res.status, 303);
      const loc = new URL(res.headers.get("location")!);
      assertEquals(loc.searchParams.get("error"), "invalid_request");
      assertEquals(loc.searchParams.get("iss"), ISSUER);
    },
  );

  await t.step("plain PKCE is refused, a public client without PKCE is refused", async () => {
    for (
      const change of [
        (u: URL) => u.searchParams.set("code_challenge_method", "plain"),
        (u: URL) => u.searchParams.delete("code_challenge_method"),
        (u: URL) => {
          u.searchParams.delete("code_challenge");
          u.searchParams.delete("code_challenge_method");
        },
      ]
    ) {
      const res = await authorize(change);
      assertEquals(res.status, 303);
      const loc = new URL(res.headers.get("location")!);
      assertEquals(loc.searchParams.get("error"), "invalid_request");
      assert(loc.searchParams.get("state") !== null);
      assert(loc.searchParams.get("error_description") !== null);
    }
  });

  await t.step("response_type other than code, and unknown scopes", async () => {
    const rt = await authorize((u) => u.searchParams.set("response_type", "token"));
    assertEquals(
      new URL(rt.headers.get("location")!).searchParams.get("error"),
      "unsupported_response_type",
    );
    const sc = await authorize((u) => u.searchParams.set("scope", "users:manage"));
    assertEquals(new URL(sc.headers.get("location")!).searchParams.get("error"), "invalid_scope");
  });
});

Deno.test("POST /oauth2/authorize/*: CSRF token and browser binding are required", async (t) => {
  await using w = await openWorld();
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token, {
    type: "public",
    grant_types: ["authorization_code"],
  });
  const user = await signUp(w.app);
  const as = await discover(w.app);
  const { url } = await authorizationRequest(as, tc.client.client_id);
  const victim = new Browser(w.app);
  const fields = formFields(await (await victim.request(url.href)).text());

  await t.step(
    "a forged login form from another browser (no binding cookie) is refused",
    async () => {
      const attacker = new Browser(w.app);
      const res = await attacker.post("/oauth2/authorize/login", {
        ...fields,
        email: user.user.email,
        password: GOOD_PASSWORD,
      });
      assertEquals(res.status, 400);
      assertEquals(res.headers.get("location"), null);
    },
  );

  await t.step("a wrong CSRF token is refused", async () => {
    const res = await victim.post("/oauth2/authorize/login", {
      ...fields,
      csrf_token: "x".repeat(43),
      email: user.user.email,
      password: GOOD_PASSWORD,
    });
    assertEquals(res.status, 400);
  });

  await t.step(
    "a wrong password re-shows the login page with 401; the lockout of /auth/login applies",
    async () => {
      const res = await victim.post("/oauth2/authorize/login", {
        ...fields,
        email: user.user.email,
        password: "Wrong-password-1!",
      });
      assertEquals(res.status, 401);
      assert((await res.text()).includes("Invalid email or password"));
      // The progressive delay of POST /auth/login now runs for this account (shared lockout).
      const again = await victim.post("/oauth2/authorize/login", {
        ...fields,
        email: user.user.email,
        password: GOOD_PASSWORD,
      });
      assertEquals(again.status, 429);
      assert(again.headers.get("retry-after") !== null);
      const api = await w.app.request("/auth/login", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: user.user.email, password: GOOD_PASSWORD }),
      });
      assertEquals(api.status, 429);
    },
  );

  await t.step("a consent form cannot be submitted before login, nor twice", async () => {
    const early = await victim.post("/oauth2/authorize/consent", {
      ...fields,
      decision: "approve",
    });
    assertEquals(early.status, 400);
    w.clock.advance(60_000);
    const tokens = await codeFlow(w, as, tc, { email: user.user.email, password: GOOD_PASSWORD });
    assert(tokens.access_token.length > 0);
  });
});

Deno.test("POST /oauth2/authorize/consent: an unverified account cannot grant consent (REQUIRE_EMAIL_VERIFICATION)", async () => {
  await using w = await openWorld({ env: { REQUIRE_EMAIL_VERIFICATION: "true" } });
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token, {
    type: "public",
    grant_types: ["authorization_code"],
  });
  const user = await signUp(w.app);
  const as = await discover(w.app);
  const req = await authorizationRequest(as, tc.client.client_id);
  const browser = new Browser(w.app);
  const start = await browser.request(req.url.href);
  const login = await browser.post("/oauth2/authorize/login", {
    ...formFields(await start.text()),
    email: user.user.email,
    password: GOOD_PASSWORD,
  });
  const res = await browser.post("/oauth2/authorize/consent", {
    ...formFields(await login.text()),
    decision: "approve",
  });
  assertEquals(res.status, 403);
  assertEquals(res.headers.get("location"), null);
  assertEquals(await w.services.oauth2.listConsents(user.id), []);
});
