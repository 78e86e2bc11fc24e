import { assert, assertEquals, assertProblem } from "../_helpers/assert.ts";
import { signUp } from "../_helpers/accounts.ts";
import { bearer, json } from "../_helpers/http.ts";
import { Browser, ISSUER } from "../_helpers/oauth2.ts";
import { loginUpstream, startOidcProvider } from "../_helpers/oidc_provider.ts";
import { auditEvents, FakeClock, openWorld, type World } from "../_helpers/world.ts";

const CALLBACK = `${ISSUER}/auth/providers/acme/callback`;

async function setup() {
  const upstream = await startOidcProvider({
    clientId: "bulwark",
    clientSecret: "upstream-secret-0123456789",
    redirectUri: CALLBACK,
  });
  const world = await openWorld({
    // The provider signs with real time; the fake clock starts there.
    clock: new FakeClock(new Date()),
    env: {
      OAUTH_PROVIDERS: JSON.stringify([{
        name: "acme",
        display_name: "Acme ID",
        issuer: upstream.issuer,
        client_id: "bulwark",
        client_secret: "upstream-secret-0123456789",
        scopes: ["openid", "email", "profile"],
      }]),
    },
  });
  return { upstream, world };
}

async function me(w: World, token: string): Promise<Record<string, unknown>> {
  const res = await w.app.request("/users/me", { headers: bearer(token) });
  assertEquals(res.status, 200);
  return await json(res);
}

Deno.test("upstream login through a real OpenID provider (oidc-provider on loopback)", async (t) => {
  const { upstream, world: w } = await setup();
  await using _u = upstream;
  await using _w = w;

  await t.step("GET /auth/providers lists the configured providers", async () => {
    const res = await w.app.request("/auth/providers");
    assertEquals(res.status, 200);
    assertEquals(await res.json(), [{ name: "acme", display_name: "Acme ID" }]);
  });

  await t.step("authorize redirects with state, PKCE S256 and nonce", async () => {
    const res = await new Browser(w.app).request("/auth/providers/acme/authorize");
    assertEquals(res.status, 302);
    const loc = new URL(res.headers.get("location")!);
    assertEquals(loc.origin, upstream.issuer);
    assertEquals(loc.searchParams.get("code_challenge_method"), "S256");
    for (const p of ["state", "nonce", "code_challenge"]) {
      assert(loc.searchParams.get(p)!.length >= 43, p);
    }
    assertEquals(loc.searchParams.get("redirect_uri"), CALLBACK);
  });

  let aliceId = "";
  await t.step(
    "a new upstream account creates a Bulwark account and a normal session (JSON)",
    async () => {
      const res = await loginUpstream(
        new Browser(w.app),
        "/auth/providers/acme/authorize",
        "alice",
        ISSUER,
      );
      assertEquals(res.status, 200, await res.clone().text());
      const body = await json(res);
      assert(typeof body.refresh_token === "string" && typeof body.session_id === "string");
      const user = await me(w, String(body.access_token));
      assertEquals(user.email, "alice@example.test");
      aliceId = String(user.id);
      // The same upstream account later finds the same Bulwark account (earlier link).
      const again = await loginUpstream(
        new Browser(w.app),
        "/auth/providers/acme/authorize",
        "alice",
        ISSUER,
      );
      assertEquals((await me(w, String((await json(again)).access_token))).id, aliceId);
    },
  );

  await t.step("an existing account is linked by its verified email", async () => {
    const bob = await signUp(w.app, {
      email: "bob@example.test",
      password: "Correct-Horse-42-Battery!",
      display_name: "Bob",
    });
    // Not yet verified here: linking could hand the address's real owner to a squatter.
    const early = await loginUpstream(
      new Browser(w.app),
      "/auth/providers/acme/authorize",
      "bob",
      ISSUER,
    );
    await assertProblem(early, 403, "forbidden");
    await w.services.users.updateUser(bob.id, (u) => ({
      ...u,
      email_verified_at: w.clock.now().toISOString(),
    }));
    const res = await loginUpstream(
      new Browser(w.app),
      "/auth/providers/acme/authorize",
      "bob",
      ISSUER,
    );
    assertEquals((await me(w, String((await json(res)).access_token))).id, bob.id);
    assertEquals((await auditEvents(w.kv, "upstream.linked")).length, 2);
  });

  await t.step("an unverified email neither links nor creates an account", async () => {
    await signUp(w.app, {
      email: "carol@example.test",
      password: "Correct-Horse-42-Battery!",
      display_name: "C",
    });
    const res = await loginUpstream(
      new Browser(w.app),
      "/auth/providers/acme/authorize",
      "unverified-carol",
      ISSUER,
    );
    await assertProblem(res, 403, "forbidden");
  });

  await t.step(
    "cookie mode: redirect_to on an allowed origin gets the session cookies and a 303",
    async () => {
      const browser = new Browser(w.app);
      const res = await loginUpstream(
        browser,
        "/auth/providers/acme/authorize?redirect_to=https%3A%2F%2Fapp.example.com%2Fdone",
        "alice",
        ISSUER,
      );
      assertEquals(res.status, 303);
      assertEquals(res.headers.get("location"), "https://app.example.com/done");
      assert(browser.cookies.has("__Host-bulwark_refresh"));
      assert(browser.cookies.has("__Host-bulwark_csrf"));
    },
  );

  await t.step("redirect_to outside CORS_ORIGINS is refused", async () => {
    for (
      const target of [
        "https://evil.example.net/",
        "https://app.example.com.evil.net/",
        "javascript:alert(1)",
        "//evil.net",
      ]
    ) {
      const res = await w.app.request(
        `/auth/providers/acme/authorize?redirect_to=${encodeURIComponent(target)}`,
      );
      await assertProblem(res, 422, "validation_failed");
    }
  });

  await t.step(
    "a callback without the browser's cookie, or with a forged or replayed state, fails",
    async () => {
      const browser = new Browser(w.app);
      const start = await browser.request("/auth/providers/acme/authorize");
      const state = new URL(start.headers.get("location")!).searchParams.get("state")!;
      // Another browser (login CSRF): the state is not bound to it.
      const other = await new Browser(w.app).request(
        `/auth/providers/acme/callback?state=${state}&code=x`,
      );
      await assertProblem(other, 401, "invalid_credentials");
      // That attempt spent the state: even the right browser cannot use it now.
      const replay = await browser.request(`/auth/providers/acme/callback?state=${state}&code=x`);
      await assertProblem(replay, 401, "invalid_credentials");
      const forged = await browser.request("/auth/providers/acme/callback?state=forged&code=x");
      await assertProblem(forged, 401, "invalid_credentials");
    },
  );

  await t.step("an unknown provider is 404", async () => {
    await assertProblem(await w.app.request("/auth/providers/nope/authorize"), 404, "not_found");
  });

  await t.step("the login is audited", async () => {
    const events = await auditEvents(w.kv, "upstream.login");
    assert(events.some((e) => e.outcome === "success" && e.user_id === aliceId));
    assert(events.some((e) => e.outcome === "failure"));
  });
});

Deno.test("OAUTH_PROVIDERS is validated at start-up", async () => {
  const { loadConfig } = await import("../../services/config/config.ts");
  const { memoryIo } = await import("../_helpers/world.ts");
  const base = {
    APP_ENV: "test",
    JWT_ACCESS_SECRET: "test-access-secret-0123456789abcdef0123456789",
    JWT_REFRESH_SECRET: "test-refresh-secret-0123456789abcdef012345678",
  };
  const io = memoryIo({ "/run/secrets/gh": "gh-secret\n" });
  const config = loadConfig({
    ...base,
    OAUTH_PROVIDERS: JSON.stringify([
      { name: "google", preset: "google", client_id: "g", client_secret: "s" },
      { name: "github", preset: "github", client_id: "h", client_secret_file: "/run/secrets/gh" },
    ]),
  }, { io });
  assertEquals(config.oauthProviders.map((p) => [p.name, p.kind, p.issuer]), [
    ["google", "oidc", "https://accounts.google.com"],
    ["github", "github", null],
  ]);
  assertEquals(config.oauthProviders[1]!.clientSecret, "gh-secret");
  for (
    const bad of [
      "not json",
      JSON.stringify([{ name: "x", client_id: "a", client_secret: "b" }]),
      JSON.stringify([{ name: "x", issuer: "https://a.example", client_id: "a" }]),
    ]
  ) {
    let threw = false;
    try {
      loadConfig({ ...base, OAUTH_PROVIDERS: bad }, { io });
    } catch (error) {
      threw = error instanceof Error && error.message.includes("OAUTH_PROVIDERS");
    }
    assert(threw, bad);
  }
  // The secret is never printed by check-config.
  const { describeConfig } = await import("../../services/config/config.ts");
  assert(!JSON.stringify(describeConfig(config)).includes("gh-secret"));
});
