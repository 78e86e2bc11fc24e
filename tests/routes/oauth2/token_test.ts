import * as oauth from "oauth4webapi";
import { assert, assertEquals, assertProblem } from "../../_helpers/assert.ts";
import { GOOD_PASSWORD, signUp } from "../../_helpers/accounts.ts";
import { bearer, json, peer } from "../../_helpers/http.ts";
import {
  admin,
  authorizationRequest,
  authorizeInBrowser,
  Browser,
  codeFlow,
  discover,
  ISSUER,
  oauthOptions,
  REDIRECT_URI,
  registerClient,
  type TestClient,
} from "../../_helpers/oauth2.ts";
import { auditEvents, openWorld, type World } from "../../_helpers/world.ts";

function basic(id: string, secret: string): Record<string, string> {
  return {
    authorization: `Basic ${btoa(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)}`,
  };
}

async function post(
  w: World,
  path: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
) {
  return await w.app.request(path, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form),
  });
}

/** Runs the browser leg and returns the code and the verifier. */
async function getCode(
  w: World,
  as: oauth.AuthorizationServer,
  tc: TestClient,
  user: { email: string; password: string },
  verifier?: string,
) {
  const req = await authorizationRequest(as, tc.client.client_id, "profile:read", verifier);
  const cb = await authorizeInBrowser(new Browser(w.app), req.url, user);
  return { code: cb.searchParams.get("code")!, verifier: req.verifier };
}

async function assertOAuthError(res: Response, status: number, error: string): Promise<void> {
  assertEquals(res.status, status, await res.clone().text());
  assertEquals(res.headers.get("content-type"), "application/json; charset=utf-8");
  assertEquals(res.headers.get("cache-control"), "no-store");
  const body = await json(res);
  assertEquals(body.error, error);
  assertEquals(typeof body.error_description, "string");
  assertEquals(body.code, undefined, "not problem+json");
}

Deno.test("POST /oauth2/token: authorization_code with PKCE", async (t) => {
  await using w = await openWorld();
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token);
  const user = await signUp(w.app);
  const creds = { email: user.user.email, password: GOOD_PASSWORD };
  const as = await discover(w.app);
  const auth = basic(tc.client.client_id, tc.secret!);

  await t.step("RFC 7636 Appendix B: the S256 test vector, end to end", async () => {
    const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    assertEquals(
      await oauth.calculatePKCECodeChallenge(verifier),
      "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    );
    const { code } = await getCode(w, as, tc, creds, verifier);
    const res = await post(w, "/oauth2/token", {
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
    }, auth);
    assertEquals(res.status, 200);
    assertEquals(res.headers.get("cache-control"), "no-store");
    assertEquals(res.headers.get("pragma"), "no-cache");
  });

  await t.step("a wrong verifier is invalid_grant, and the code is spent", async () => {
    const { code, verifier } = await getCode(w, as, tc, creds);
    const wrong = await post(w, "/oauth2/token", {
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: "A".repeat(43),
    }, auth);
    await assertOAuthError(wrong, 400, "invalid_grant");
    const right = await post(w, "/oauth2/token", {
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
    }, auth);
    await assertOAuthError(right, 400, "invalid_grant");
  });

  await t.step("a missing verifier, or another redirect_uri, is invalid_grant", async () => {
    const a = await getCode(w, as, tc, creds);
    await assertOAuthError(
      await post(w, "/oauth2/token", {
        grant_type: "authorization_code",
        code: a.code,
        redirect_uri: REDIRECT_URI,
      }, auth),
      400,
      "invalid_grant",
    );
    const b = await getCode(w, as, tc, creds);
    await assertOAuthError(
      await post(w, "/oauth2/token", {
        grant_type: "authorization_code",
        code: b.code,
        redirect_uri: "https://client.example.com/other",
        code_verifier: b.verifier,
      }, auth),
      400,
      "invalid_grant",
    );
  });

  await t.step("a code lives 60 s", async () => {
    const { code, verifier } = await getCode(w, as, tc, creds);
    w.clock.advance(60_000);
    await assertOAuthError(
      await post(w, "/oauth2/token", {
        grant_type: "authorization_code",
        code,
        redirect_uri: REDIRECT_URI,
        code_verifier: verifier,
      }, auth),
      400,
      "invalid_grant",
    );
  });

  await t.step("a replayed code fails and revokes every token issued from it", async () => {
    const { code, verifier } = await getCode(w, as, tc, creds);
    const replaysBefore = (await auditEvents(w.kv, "oauth2.code_replayed")).length;
    const form = {
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
    };
    const first = await json(await post(w, "/oauth2/token", form, auth));
    const access = String(first.access_token);
    assertEquals((await w.app.request("/users/me", { headers: bearer(access) })).status, 200);
    await assertOAuthError(await post(w, "/oauth2/token", form, auth), 400, "invalid_grant");
    assertEquals((await w.app.request("/users/me", { headers: bearer(access) })).status, 401);
    const refresh = await post(w, "/oauth2/token", {
      grant_type: "refresh_token",
      refresh_token: String(first.refresh_token),
    }, auth);
    await assertOAuthError(refresh, 400, "invalid_grant");
    assertEquals((await auditEvents(w.kv, "oauth2.code_replayed")).length, replaysBefore + 1);
  });

  await t.step("another client cannot redeem the code", async () => {
    const other = await registerClient(w, boss.token);
    const { code, verifier } = await getCode(w, as, tc, creds);
    const res = await post(w, "/oauth2/token", {
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
    }, basic(other.client.client_id, other.secret!));
    await assertOAuthError(res, 400, "invalid_grant");
  });
});

Deno.test("POST /oauth2/token: refresh rotation, and reuse of a spent token revokes the grant", async () => {
  await using w = await openWorld();
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token);
  const user = await signUp(w.app);
  const as = await discover(w.app);
  const first = await codeFlow(w, as, tc, { email: user.user.email, password: GOOD_PASSWORD });
  const opts = oauthOptions(w.app);
  const second = await oauth.processRefreshTokenResponse(
    as,
    tc.client,
    await oauth.refreshTokenGrantRequest(as, tc.client, tc.auth, first.refresh_token!, opts),
  );
  assert(second.refresh_token !== first.refresh_token, "rotated");
  assertEquals(
    (await w.app.request("/users/me", { headers: bearer(second.access_token) })).status,
    200,
  );
  // The spent one comes back: the whole grant ends, the new pair included.
  const reuse = await oauth.refreshTokenGrantRequest(
    as,
    tc.client,
    tc.auth,
    first.refresh_token!,
    opts,
  );
  await assertOAuthError(reuse, 400, "invalid_grant");
  const after = await oauth.refreshTokenGrantRequest(
    as,
    tc.client,
    tc.auth,
    second.refresh_token!,
    opts,
  );
  await assertOAuthError(after, 400, "invalid_grant");
  assertEquals(
    (await w.app.request("/users/me", { headers: bearer(second.access_token) })).status,
    401,
  );
  assertEquals((await auditEvents(w.kv, "oauth2.refresh_reuse_detected")).length, 1);
});

Deno.test("POST /oauth2/token: client_credentials, introspection and revocation", async (t) => {
  await using w = await openWorld();
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token);
  const other = await registerClient(w, boss.token);
  const as = await discover(w.app);
  const opts = oauthOptions(w.app);
  const user = await signUp(w.app);

  const cc = await oauth.processClientCredentialsResponse(
    as,
    tc.client,
    await oauth.clientCredentialsGrantRequest(
      as,
      tc.client,
      tc.auth,
      { scope: "notes:read" },
      opts,
    ),
  );

  await t.step("client_credentials issues a user-less at+jwt with the asked scope", async () => {
    assertEquals(cc.scope, "notes:read");
    assertEquals(cc.refresh_token, undefined);
    // It acts for no user, so Bulwark's user API refuses it.
    assertEquals(
      (await w.app.request("/users/me", { headers: bearer(cc.access_token) })).status,
      401,
    );
  });

  await t.step(
    "client_credentials refuses public clients and scopes the client lacks",
    async () => {
      const pub = await registerClient(w, boss.token, {
        type: "public",
        grant_types: ["authorization_code"],
      });
      const res = await post(w, "/oauth2/token", {
        grant_type: "client_credentials",
        client_id: pub.client.client_id,
      });
      await assertOAuthError(res, 400, "unauthorized_client");
      const wide = await post(w, "/oauth2/token", {
        grant_type: "client_credentials",
        scope: "users:manage",
      }, basic(tc.client.client_id, tc.secret!));
      await assertOAuthError(wide, 400, "invalid_scope");
    },
  );

  await t.step(
    "introspection: active for the client's own token, inactive for another client",
    async () => {
      const mine = await oauth.processIntrospectionResponse(
        as,
        tc.client,
        await oauth.introspectionRequest(as, tc.client, tc.auth, cc.access_token, opts),
      );
      assertEquals(mine.active, true);
      assertEquals(mine.client_id, tc.client.client_id);
      assertEquals(mine.scope, "notes:read");
      const theirs = await oauth.processIntrospectionResponse(
        as,
        other.client,
        await oauth.introspectionRequest(as, other.client, other.auth, cc.access_token, opts),
      );
      assertEquals(theirs.active, false);
      assertEquals(Object.keys(theirs), ["active"]);
      const junk = await oauth.processIntrospectionResponse(
        as,
        tc.client,
        await oauth.introspectionRequest(as, tc.client, tc.auth, "garbage", opts),
      );
      assertEquals(junk.active, false);
    },
  );

  await t.step("unauthenticated introspection is refused with 401 invalid_client", async () => {
    const none = await post(w, "/oauth2/introspect", { token: cc.access_token });
    await assertOAuthError(none, 401, "invalid_client");
    const wrong = await post(
      w,
      "/oauth2/introspect",
      { token: cc.access_token },
      basic(tc.client.client_id, "wrong-secret"),
    );
    await assertOAuthError(wrong, 401, "invalid_client");
    assert((wrong.headers.get("www-authenticate") ?? "").startsWith("Basic"));
    const post_ = await post(w, "/oauth2/introspect", {
      token: cc.access_token,
      client_id: tc.client.client_id,
      client_secret: "nope",
    });
    await assertOAuthError(post_, 401, "invalid_client");
    assert((await auditEvents(w.kv, "oauth2.client_auth_failed")).length >= 3);
  });

  await t.step("client_secret_post authenticates too", async () => {
    const res = await post(w, "/oauth2/introspect", {
      token: cc.access_token,
      client_id: tc.client.client_id,
      client_secret: tc.secret!,
    });
    assertEquals((await json(res)).active, true);
  });

  await t.step("revocation takes effect at once; unknown tokens answer 200", async () => {
    const rev = await oauth.revocationRequest(as, tc.client, tc.auth, cc.access_token, opts);
    assertEquals(rev.status, 200);
    const after = await oauth.processIntrospectionResponse(
      as,
      tc.client,
      await oauth.introspectionRequest(as, tc.client, tc.auth, cc.access_token, opts),
    );
    assertEquals(after.active, false);
    assertEquals(
      (await oauth.revocationRequest(as, tc.client, tc.auth, "unknown-token", opts)).status,
      200,
    );
  });

  await t.step("a revoked refresh token answers inactive and ends its access tokens", async () => {
    const tokens = await codeFlow(w, as, tc, { email: user.user.email, password: GOOD_PASSWORD });
    const rt = await oauth.processIntrospectionResponse(
      as,
      tc.client,
      await oauth.introspectionRequest(as, tc.client, tc.auth, tokens.refresh_token!, opts),
    );
    assertEquals(rt.active, true);
    assertEquals(rt.sub, user.id);
    await oauth.revocationRequest(as, tc.client, tc.auth, tokens.refresh_token!, opts);
    for (const token of [tokens.refresh_token!, tokens.access_token]) {
      const r = await oauth.processIntrospectionResponse(
        as,
        tc.client,
        await oauth.introspectionRequest(as, tc.client, tc.auth, token, opts),
      );
      assertEquals(r.active, false);
    }
    assertEquals(
      (await w.app.request("/users/me", { headers: bearer(tokens.access_token) })).status,
      401,
    );
  });

  await t.step("an access token expires after 10 minutes", async () => {
    const fresh = await oauth.processClientCredentialsResponse(
      as,
      tc.client,
      await oauth.clientCredentialsGrantRequest(as, tc.client, tc.auth, {}, opts),
    );
    assertEquals(fresh.expires_in, 600);
    w.clock.advance(600_000 + 11_000);
    const r = await oauth.processIntrospectionResponse(
      as,
      tc.client,
      await oauth.introspectionRequest(as, tc.client, tc.auth, fresh.access_token, opts),
    );
    assertEquals(r.active, false);
  });
});

Deno.test("POST /oauth2/token: RFC 6749 §5.2 error shapes", async () => {
  await using w = await openWorld();
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token);
  const auth = basic(tc.client.client_id, tc.secret!);
  await assertOAuthError(await post(w, "/oauth2/token", {}, auth), 400, "invalid_request");
  await assertOAuthError(
    await post(w, "/oauth2/token", { grant_type: "password" }, auth),
    400,
    "unsupported_grant_type",
  );
  await assertOAuthError(
    await post(
      w,
      "/oauth2/token",
      { grant_type: "client_credentials" },
      basic(tc.client.client_id, "x"),
    ),
    401,
    "invalid_client",
  );
  await assertOAuthError(
    await post(
      w,
      "/oauth2/token",
      { grant_type: "client_credentials" },
      basic("unknown-client", "x"),
    ),
    401,
    "invalid_client",
  );
  const json_ = await w.app.request("/oauth2/token", {
    method: "POST",
    headers: { "content-type": "application/json", ...auth },
    body: "{}",
  });
  await assertOAuthError(json_, 400, "invalid_request");
  const twice = await w.app.request("/oauth2/token", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...auth },
    body: "grant_type=client_credentials&grant_type=client_credentials",
  });
  await assertOAuthError(twice, 400, "invalid_request");
  // Basic and a form secret together are two methods at once.
  const both = await post(w, "/oauth2/token", {
    grant_type: "client_credentials",
    client_secret: tc.secret!,
  }, auth);
  await assertOAuthError(both, 400, "invalid_request");
});

Deno.test("GET /.well-known/oauth-authorization-server lists every endpoint, S256 only, grants, auth methods and scopes", async () => {
  await using w = await openWorld();
  const as = await discover(w.app);
  assertEquals(as.issuer, ISSUER);
  assertEquals(as.authorization_endpoint, `${ISSUER}/oauth2/authorize`);
  assertEquals(as.token_endpoint, `${ISSUER}/oauth2/token`);
  assertEquals(as.introspection_endpoint, `${ISSUER}/oauth2/introspect`);
  assertEquals(as.revocation_endpoint, `${ISSUER}/oauth2/revoke`);
  assertEquals(as.code_challenge_methods_supported, ["S256"]);
  assertEquals(as.grant_types_supported, [
    "authorization_code",
    "refresh_token",
    "client_credentials",
  ]);
  assertEquals(as.response_types_supported, ["code"]);
  assert(as.token_endpoint_auth_methods_supported!.includes("client_secret_basic"));
  assert(as.token_endpoint_auth_methods_supported!.includes("client_secret_post"));
  assert(as.scopes_supported!.includes("profile:read"));
  assertEquals(as.authorization_response_iss_parameter_supported, true);
});

Deno.test("revokeAllForUser() ends every grant and consent of the user", async () => {
  await using w = await openWorld();
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token);
  const user = await signUp(w.app);
  const as = await discover(w.app);
  const tokens = await codeFlow(w, as, tc, { email: user.user.email, password: GOOD_PASSWORD });
  assertEquals(await w.services.oauth2.revokeAllForUser(user.id), 1);
  assertEquals(
    (await w.app.request("/users/me", { headers: bearer(tokens.access_token) })).status,
    401,
  );
  assertEquals(await w.services.oauth2.listConsents(user.id), []);
  const res = await oauth.refreshTokenGrantRequest(
    as,
    tc.client,
    tc.auth,
    tokens.refresh_token!,
    oauthOptions(w.app),
  );
  await assertOAuthError(res, 400, "invalid_grant");
});

Deno.test("POST /auth/logout-all revokes the user's OAuth2 grants too (revoke every credential)", async () => {
  await using w = await openWorld();
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token);
  const user = await signUp(w.app);
  const as = await discover(w.app);
  const tokens = await codeFlow(w, as, tc, { email: user.user.email, password: GOOD_PASSWORD });
  const res = await w.app.request("/auth/logout-all", {
    method: "POST",
    headers: bearer(user.access),
  });
  assertEquals(res.status, 204);
  assertEquals(
    (await w.app.request("/users/me", { headers: bearer(tokens.access_token) })).status,
    401,
  );
  const refresh = await oauth.refreshTokenGrantRequest(
    as,
    tc.client,
    tc.auth,
    tokens.refresh_token!,
    oauthOptions(w.app),
  );
  await assertOAuthError(refresh, 400, "invalid_grant");
});

Deno.test("an OAuth2 access token cannot manage sessions, keys or consents (user session only)", async () => {
  await using w = await openWorld();
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token, {
    scopes: ["profile:read", "sessions:manage", "apikeys:manage"],
  });
  const user = await signUp(w.app);
  const as = await discover(w.app);
  const tokens = await codeFlow(
    w,
    as,
    tc,
    { email: user.user.email, password: GOOD_PASSWORD },
    "profile:read sessions:manage apikeys:manage",
  );
  for (const path of ["/auth/sessions", "/api-keys", "/oauth2/consents"]) {
    const res = await w.app.request(path, { headers: bearer(tokens.access_token) });
    assertEquals(res.status, 403, path);
  }
  // A session access token is not an OAuth2 token: introspection calls it inactive.
  const r = await post(
    w,
    "/oauth2/introspect",
    { token: user.access },
    basic(tc.client.client_id, tc.secret!),
  );
  assertEquals((await json(r)).active, false);
});

Deno.test("POST /oauth2/token is limited like login: per client across IPs, and per IP", async (t) => {
  await using w = await openWorld({ env: { RATE_LIMIT_LOGIN: "3/minute" } });
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token);
  const other = await registerClient(w, boss.token);
  const form = new URLSearchParams({ grant_type: "client_credentials" });
  const ask = (c: TestClient, ip: string) =>
    w.app.request("/oauth2/token", {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        ...basic(c.client.client_id, c.secret!),
      },
      body: form,
    }, peer(ip));
  await t.step("the client's own bucket holds across IPs", async () => {
    for (let i = 0; i < 3; i++) assertEquals((await ask(tc, `192.0.2.${i + 1}`)).status, 200);
    await assertProblem(await ask(tc, "192.0.2.99"), 429, "rate_limited");
    // Another client is not affected.
    assertEquals((await ask(other, "192.0.2.50")).status, 200);
  });
  await t.step("one IP's bucket holds across clients", async () => {
    const third = await registerClient(w, boss.token);
    for (let i = 0; i < 2; i++) assertEquals((await ask(third, "198.51.100.77")).status, 200);
    assertEquals((await ask(other, "198.51.100.77")).status, 200);
    await assertProblem(await ask(other, "198.51.100.77"), 429, "rate_limited");
  });
});

Deno.test("concurrent use of one code or one refresh token: at most one wins, and a race revokes the grant", async () => {
  await using w = await openWorld();
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token);
  const user = await signUp(w.app);
  const creds = { email: user.user.email, password: GOOD_PASSWORD };
  const as = await discover(w.app);
  const auth = basic(tc.client.client_id, tc.secret!);
  const { code, verifier } = await getCode(w, as, tc, creds);
  const form = {
    grant_type: "authorization_code",
    code,
    redirect_uri: REDIRECT_URI,
    code_verifier: verifier,
  };
  const codeRuns = await Promise.all(
    Array.from({ length: 5 }, () => post(w, "/oauth2/token", form, auth)),
  );
  assert(codeRuns.filter((r) => r.status === 200).length <= 1, "one code, at most one token");
  const tokens = await codeFlow(w, as, tc, creds);
  const refreshRuns = await Promise.all(
    Array.from(
      { length: 5 },
      () =>
        post(w, "/oauth2/token", {
          grant_type: "refresh_token",
          refresh_token: tokens.refresh_token!,
        }, auth),
    ),
  );
  const winners = refreshRuns.filter((r) => r.status === 200);
  assert(winners.length <= 1, "one refresh token, at most one rotation");
  // A copy was spent twice: the grant is gone, the winner's new token included.
  for (const r of winners) {
    const next = String((await json(r)).refresh_token);
    await assertOAuthError(
      await post(w, "/oauth2/token", { grant_type: "refresh_token", refresh_token: next }, auth),
      400,
      "invalid_grant",
    );
  }
  for (const r of [...codeRuns, ...refreshRuns]) if (!r.bodyUsed) await r.body?.cancel();
});

Deno.test("a code made before a password reset is refused (sign-in outliving account recovery)", async () => {
  await using w = await openWorld();
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token);
  const user = await signUp(w.app);
  const as = await discover(w.app);
  const { code, verifier } = await getCode(w, as, tc, {
    email: user.user.email,
    password: GOOD_PASSWORD,
  });
  // The owner recovers the account (a reset moves password_changed_at) before the code is used.
  w.clock.advance(1000);
  await w.services.users.updateUser(user.id, (u) => ({
    ...u,
    password_changed_at: w.clock.now().toISOString(),
  }));
  const res = await post(w, "/oauth2/token", {
    grant_type: "authorization_code",
    code,
    redirect_uri: REDIRECT_URI,
    code_verifier: verifier,
  }, basic(tc.client.client_id, tc.secret!));
  await assertOAuthError(res, 400, "invalid_grant");
});

Deno.test("a code made before the consent was withdrawn or the user logged out everywhere is refused", async (t) => {
  await using w = await openWorld();
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token);
  const user = await signUp(w.app);
  const as = await discover(w.app);
  const redeem = (code: string, verifier: string) =>
    post(w, "/oauth2/token", {
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
    }, basic(tc.client.client_id, tc.secret!));
  const login = { email: user.user.email, password: GOOD_PASSWORD };

  await t.step("consent withdrawn while the code waited", async () => {
    const { code, verifier } = await getCode(w, as, tc, login);
    const withdrawn = await w.app.request(`/oauth2/consents/${tc.client.client_id}`, {
      method: "DELETE",
      headers: bearer(user.access),
    });
    assertEquals(withdrawn.status, 204);
    await assertOAuthError(await redeem(code, verifier), 400, "invalid_grant");
    assertEquals(await w.services.oauth2.listConsents(user.id), []);
  });

  await t.step("logout-all while the code waited", async () => {
    const { code, verifier } = await getCode(w, as, tc, login);
    const out = await w.app.request("/auth/logout-all", {
      method: "POST",
      headers: bearer(user.access),
    });
    assertEquals(out.status, 204);
    await assertOAuthError(await redeem(code, verifier), 400, "invalid_grant");
  });

  await t.step("control: a code redeemed with its consent in place gets tokens", async () => {
    const fresh = await signUp(w.app);
    const { code, verifier } = await getCode(w, as, tc, {
      email: fresh.user.email,
      password: GOOD_PASSWORD,
    });
    assertEquals((await redeem(code, verifier)).status, 200);
  });
});
