import { createApp } from "../../routes/app.ts";
import { createBcryptHasher } from "../../services/identity/password_hasher.ts";
import { GOOD_PASSWORD, login, randomUser, signUp, tokenPair } from "../_helpers/accounts.ts";
import { assert, assertEquals, assertMatch, assertNotEquals } from "../_helpers/assert.ts";
import { bearer, json, jsonInit } from "../_helpers/http.ts";
import { decodeJwt, withHeader, withPayload } from "../_helpers/jwt.ts";
import { auditEvents, FakeClock, openWorld } from "../_helpers/world.ts";

Deno.test("POST /auth/register creates an account", async (t) => {
  await using w = await openWorld();
  await t.step("201 with the public shape and Location", async () => {
    const body = randomUser({ email: "  Mixed.Case@Example.COM " });
    const res = await w.app.request("/auth/register", jsonInit("POST", body));
    assertEquals(res.status, 201);
    assertEquals(res.headers.get("cache-control"), "no-store");
    const user = await json(res);
    assertEquals(Object.keys(user).sort(), ["created_at", "display_name", "email", "id", "role"]);
    assertEquals(user.email, "mixed.case@example.com");
    assertEquals(user.role, "user");
    assertMatch(String(user.id), /^[A-Za-z0-9_-]{22}$/);
    assertEquals(user.created_at, "2026-01-01T00:00:00.000Z");
  });
  await t.step("409 conflict for a taken email, whatever its case", async () => {
    const body = randomUser();
    assertEquals((await w.app.request("/auth/register", jsonInit("POST", body))).status, 201);
    const again = await w.app.request(
      "/auth/register",
      jsonInit("POST", { ...body, email: body.email.toUpperCase() }),
    );
    assertEquals(again.status, 409);
    assertEquals((await json(again)).code, "conflict");
  });
  await t.step("422 password_policy lists every failed rule", async () => {
    const res = await w.app.request(
      "/auth/register",
      jsonInit("POST", randomUser({ password: "password" })),
    );
    assertEquals(res.status, 422);
    const body = await json(res);
    assertEquals(body.code, "password_policy");
    const messages = (body.errors as { message: string }[]).map((e) => e.message);
    assert(messages.length >= 4, messages.join(" | "));
  });
  await t.step("a password over 72 bytes is refused, never truncated", async () => {
    const res = await w.app.request(
      "/auth/register",
      jsonInit("POST", randomUser({ password: `${GOOD_PASSWORD}${"é".repeat(30)}` })),
    );
    assertEquals(res.status, 422);
    assertMatch(JSON.stringify(await json(res)), /72 bytes/);
  });
  await t.step("unknown fields, bad emails and injection payloads are 422", async () => {
    for (
      const body of [
        { ...randomUser(), role: "admin" },
        { ...randomUser(), email: "not-an-email" },
        { ...randomUser(), email: { $gt: "" } },
        { ...randomUser(), email: "a@b.c' OR '1'='1" },
        { ...randomUser(), display_name: "x".repeat(101) },
      ]
    ) {
      const res = await w.app.request("/auth/register", jsonInit("POST", body));
      assertEquals(res.status, 422, JSON.stringify(body));
      assertEquals((await json(res)).code, "validation_failed");
    }
  });
  await t.step("no password hash is stored in clear or returned", async () => {
    const body = randomUser();
    await w.app.request("/auth/register", jsonInit("POST", body));
    for await (const entry of w.kv.list({ prefix: [] })) {
      assert(!JSON.stringify(entry.value).includes(body.password));
    }
  });
  await t.step("registration is audited", async () => {
    assert((await auditEvents(w.kv, "user.registered")).some((e) => e.outcome === "success"));
  });
});

Deno.test("POST /auth/login issues a token pair", async (t) => {
  await using w = await openWorld();
  const user = randomUser();
  await w.app.request("/auth/register", jsonInit("POST", user));
  await t.step("JSON login returns the documented shape", async () => {
    const res = await login(w.app, user);
    assertEquals(res.status, 200);
    assertEquals(res.headers.get("cache-control"), "no-store");
    const body = await json(res);
    assertEquals(body.token_type, "bearer");
    assertEquals(body.expires_in, 1800);
    assertEquals(body.refresh_expires_in, 12 * 3600);
    assertEquals(typeof body.session_id, "string");
    const { header, payload } = decodeJwt(String(body.access_token));
    assertEquals(header.alg, "HS256");
    assertEquals(typeof header.kid, "string");
    assertEquals(payload.typ, "access");
    assertEquals(payload.role, "user");
    assertEquals(payload.sid, body.session_id);
    assertEquals(Number(payload.exp) - Number(payload.iat), 1800);
    assertMatch(String(payload.scope), /profile:read/);
  });
  await t.step("remember_me extends the refresh lifetime to 7 days", async () => {
    const res = await login(w.app, user, { remember_me: true });
    assertEquals((await json(res)).refresh_expires_in, 7 * 86400);
  });
  await t.step("the OAuth2 password form works and narrows scopes", async () => {
    const res = await login(w.app, user, { scope: "profile:read users:manage" });
    assertEquals(res.status, 200);
    const { payload } = decodeJwt((await tokenPair(res)).access);
    assertEquals(payload.scope, "profile:read", "never more than the role has");
  });
  await t.step("wrong password and unknown email are indistinguishable", async () => {
    const wrong = await login(w.app, { email: user.email, password: "Wrong-Pass-99!" });
    const unknown = await login(w.app, { email: "nobody@example.com", password: "Wrong-Pass-99!" });
    assertEquals(wrong.status, 401);
    assertEquals(unknown.status, 401);
    const a = await json(wrong);
    const b = await json(unknown);
    assertEquals(a.code, "invalid_credentials");
    for (const body of [a, b]) {
      delete body.request_id;
      delete body.instance;
    }
    assertEquals(a, b);
    assertEquals(wrong.headers.get("www-authenticate"), unknown.headers.get("www-authenticate"));
  });
  await t.step("failures are audited with a reason and never the password", async () => {
    const failures = await auditEvents(w.kv, "auth.login");
    assert(failures.some((e) => e.outcome === "failure" && typeof e.details.reason === "string"));
    for await (const e of w.kv.list({ prefix: ["audit"] })) {
      assert(!JSON.stringify(e.value).includes("Wrong-Pass-99!"));
    }
    assert(
      !w.logger.lines.some((l) => l.includes("Wrong-Pass-99!") || l.includes(user.password)),
    );
  });
  await t.step("a password past 72 bytes sharing the real prefix does not log in", async () => {
    const long = randomUser({ password: `Aa1!${"x".repeat(68)}` });
    await w.app.request("/auth/register", jsonInit("POST", long));
    const res = await login(w.app, { email: long.email, password: `${long.password}EXTRA` });
    assertEquals(res.status, 401);
  });
  await t.step("415 for other media types, 400 for malformed JSON", async () => {
    const text = await w.app.request("/auth/login", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "x",
    });
    assertEquals(text.status, 415);
    const bad = await w.app.request("/auth/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{",
    });
    assertEquals(bad.status, 400);
    assertEquals((await json(bad)).code, "malformed_json");
  });
});

Deno.test("a login re-hashes a password stored with fewer rounds", async () => {
  await using w = await openWorld();
  const user = randomUser();
  await w.app.request("/auth/register", jsonInit("POST", user));
  const stored = await w.services.users.getUserByEmail(user.email);
  assertMatch(stored!.password_hash, /^\$2b\$04\$/);
  // The service now asks for cost 5: the next login must upgrade the hash.
  const stronger = createBcryptHasher({ rounds: 5, workers: 0 });
  const app = createApp({ ...w.deps, hasher: stronger });
  const res = await login(app, user);
  assertEquals(res.status, 200);
  const after = await w.services.users.getUserByEmail(user.email);
  assertMatch(after!.password_hash, /^\$2b\$05\$/);
});

Deno.test("GET /users/me needs a valid access token", async (t) => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  await t.step("200 with the user", async () => {
    const res = await w.app.request("/users/me", { headers: bearer(s.access) });
    assertEquals(res.status, 200);
    const body = await json(res);
    assertEquals(body.id, s.id);
    assertEquals(body.email, s.user.email);
    assert(!("password_hash" in body));
  });
  await t.step("401 with WWW-Authenticate without a token", async () => {
    const res = await w.app.request("/users/me");
    assertEquals(res.status, 401);
    assertEquals((await json(res)).code, "token_invalid");
    assertMatch(res.headers.get("www-authenticate") ?? "", /^Bearer/);
  });
  const bad = {
    "garbage": "Bearer abc.def.ghi",
    "basic scheme": "Basic dXNlcjpwYXNz",
    "refresh token as access": `Bearer ${s.refresh}`,
    "tampered payload": `Bearer ${tamper(s.access)}`,
    "alg none": `Bearer ${algNone(s.access)}`,
    "empty": "Bearer ",
  };
  for (const [name, header] of Object.entries(bad)) {
    await t.step(`401 token_invalid for ${name}`, async () => {
      const res = await w.app.request("/users/me", { headers: { authorization: header } });
      assertEquals(res.status, 401);
      assertEquals((await json(res)).code, "token_invalid");
    });
  }
  await t.step("401 token_expired after 30 minutes (+ leeway)", async () => {
    w.clock.advance(30 * 60_000 + 11_000);
    const res = await w.app.request("/users/me", { headers: bearer(s.access) });
    assertEquals(res.status, 401);
    assertEquals((await json(res)).code, "token_expired");
  });
});

Deno.test("POST /auth/refresh rotates the pair and detects reuse", async (t) => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  let current = s.refresh;
  await t.step("a refresh returns a new pair and spends the old token", async () => {
    w.clock.advance(1000);
    const res = await w.app.request("/auth/refresh", jsonInit("POST", { refresh_token: current }));
    assertEquals(res.status, 200);
    const body = await json(res);
    assertNotEquals(body.refresh_token, current);
    assertEquals(body.session_id, s.sessionId);
    const me = await w.app.request("/users/me", { headers: bearer(String(body.access_token)) });
    assertEquals(me.status, 200);
    const old = current;
    current = String(body.refresh_token);
    const replay = await w.app.request("/auth/refresh", jsonInit("POST", { refresh_token: old }));
    assertEquals(replay.status, 401);
    assertEquals((await json(replay)).code, "token_revoked");
  });
  await t.step(
    "the replay revoked the whole session (theft detection) and was audited",
    async () => {
      const res = await w.app.request(
        "/auth/refresh",
        jsonInit("POST", { refresh_token: current }),
      );
      assertEquals(res.status, 401);
      const me = await w.app.request("/users/me", { headers: bearer(s.access) });
      assertEquals((await json(me)).code, "token_revoked");
      assert(
        (await auditEvents(w.kv, "auth.refresh_reuse_detected")).some((e) =>
          e.outcome === "failure"
        ),
      );
    },
  );
  await t.step("an access token is not a refresh token", async () => {
    const fresh = await signUp(w.app);
    const res = await w.app.request(
      "/auth/refresh",
      jsonInit("POST", { refresh_token: fresh.access }),
    );
    assertEquals(res.status, 401);
    assertEquals((await json(res)).code, "token_invalid");
  });
  await t.step("a refresh after the session's end is refused", async () => {
    const fresh = await signUp(w.app);
    w.clock.advance(12 * 3600_000 + 60_000);
    const res = await w.app.request(
      "/auth/refresh",
      jsonInit("POST", { refresh_token: fresh.refresh }),
    );
    assertEquals(res.status, 401);
  });
});

Deno.test("two concurrent refreshes with the same token: exactly one wins", async () => {
  await using w = await openWorld();
  for (let round = 0; round < 5; round++) {
    const s = await signUp(w.app);
    const results = await Promise.all(
      [0, 1].map(() =>
        w.app.request("/auth/refresh", jsonInit("POST", { refresh_token: s.refresh }))
      ),
    );
    const statuses = results.map((r) => r.status).sort();
    assertEquals(statuses, [200, 401]);
    const winner = results.find((r) => r.status === 200)!;
    const body = await json(winner);
    await Promise.all(results.filter((r) => r !== winner).map((r) => r.body?.cancel()));
    const me = await w.app.request("/users/me", { headers: bearer(String(body.access_token)) });
    // The loser either lost the commit race (session kept) or saw the rotated jti (session revoked).
    assert([200, 401].includes(me.status));
  }
});

Deno.test("POST /auth/logout and /auth/logout-all revoke", async (t) => {
  await using w = await openWorld();
  await t.step("logout blacklists the access token and kills the session", async () => {
    const s = await signUp(w.app);
    const res = await w.app.request("/auth/logout", { method: "POST", headers: bearer(s.access) });
    assertEquals(res.status, 204);
    const me = await w.app.request("/users/me", { headers: bearer(s.access) });
    assertEquals(me.status, 401);
    assertEquals((await json(me)).code, "token_revoked");
    const refresh = await w.app.request(
      "/auth/refresh",
      jsonInit("POST", { refresh_token: s.refresh }),
    );
    assertEquals(refresh.status, 401);
    const entry = await w.kv.get(["revoked_jtis", String(decodeJwt(s.access).payload.jti)]);
    assert(entry.value !== null, "jti is on the blacklist");
  });
  await t.step("logout needs a token", async () => {
    assertEquals((await w.app.request("/auth/logout", { method: "POST" })).status, 401);
  });
  await t.step("logout-all revokes every session of the user only", async () => {
    const s = await signUp(w.app);
    const other = await signUp(w.app);
    const secondAccess = (await tokenPair(await login(w.app, s.user))).access;
    const res = await w.app.request("/auth/logout-all", {
      method: "POST",
      headers: bearer(s.access),
    });
    assertEquals(res.status, 204);
    for (const token of [s.access, secondAccess]) {
      assertEquals((await w.app.request("/users/me", { headers: bearer(token) })).status, 401);
    }
    assertEquals((await w.app.request("/users/me", { headers: bearer(other.access) })).status, 200);
    assert((await auditEvents(w.kv, "auth.logout_all")).some((e) => e.outcome === "success"));
  });
});

Deno.test("dropping a key id from the keyring revokes every token it signed", async () => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const a = "a".repeat(40);
  const b = "b".repeat(40);
  const instance = (accessSecrets: string) =>
    openWorld({
      kv,
      clock,
      env: { JWT_ACCESS_SECRETS: accessSecrets, JWT_REFRESH_SECRET: "r".repeat(40) },
    });
  await using before = await instance(`k1:${a}`);
  const s = await signUp(before.app);
  await using rotated = await instance(`k2:${b},k1:${a}`);
  assertEquals((await rotated.app.request("/users/me", { headers: bearer(s.access) })).status, 200);
  await using dropped = await instance(`k2:${b}`);
  const res = await dropped.app.request("/users/me", { headers: bearer(s.access) });
  assertEquals(res.status, 401);
  assertEquals((await json(res)).code, "token_invalid");
});

/** `token` claiming the admin role, its signature unchanged. */
function tamper(token: string): string {
  return withPayload(token, { ...decodeJwt(token).payload, role: "admin" });
}

/** `token` re-labelled `alg: none` with its signature dropped. */
function algNone(token: string): string {
  return withHeader(token, { alg: "none", typ: "JWT" }).replace(/[^.]*$/, "");
}

Deno.test("an access token stops working when its account is disabled or its role changes", async (t) => {
  await using w = await openWorld();
  await t.step("disabled", async () => {
    const s = await signUp(w.app);
    await w.services.users.updateUser(s.id, (u) => ({ ...u, disabled: true }));
    const res = await w.app.request("/users/me", { headers: bearer(s.access) });
    assertEquals(res.status, 401);
    assertEquals((await json(res)).code, "token_revoked");
  });
  await t.step("role changed", async () => {
    const s = await signUp(w.app);
    await w.services.users.updateUser(s.id, (u) => ({ ...u, role: "moderator" }));
    assertEquals((await w.app.request("/users/me", { headers: bearer(s.access) })).status, 401);
  });
});
