/**
 * Regression tests for the white-box security review (issue #10). Each test names the
 * finding it pins down; each failed against the code before its fix.
 */
import { assert, assertEquals, assertMatch, assertProblem } from "../_helpers/assert.ts";
import { GOOD_PASSWORD, login, type SignedUp, signUp, tokenPair } from "../_helpers/accounts.ts";
import { png } from "../_helpers/files.ts";
import { bearer, json, jsonInit, peer } from "../_helpers/http.ts";
import { auditEvents, openWorld, type World } from "../_helpers/world.ts";

const NEW_PASSWORD = "Another-Strong-Pass-77!";

async function createKey(w: World, access: string, scopes: string[] = ["uploads:read"]) {
  return await w.app.request("/api-keys", jsonInit("POST", { name: "k", scopes }, bearer(access)));
}

function uploadForm(): FormData {
  const body = new FormData();
  body.append("file", new Blob([png() as BlobPart], { type: "image/png" }), "a.png");
  return body;
}

/** Mails the reset link for `email` and returns the token from it. */
async function mailedResetToken(w: World, email: string): Promise<string> {
  const before = w.mailer.sent.length;
  const res = await w.app.request("/auth/password/forgot", jsonInit("POST", { email }));
  assertEquals(res.status, 202);
  await w.services.background.settled();
  const mail = w.mailer.sent[before];
  assert(mail !== undefined, "a reset mail was sent");
  return /#token=([A-Za-z0-9_-]{43})/.exec(mail.text)![1]!;
}

Deno.test("account recovery revokes every credential (credentials outlive account recovery: pre-hijacking)", async (t) => {
  await using w = await openWorld();
  // The attacker registered the victim's address first and made a long-lived key.
  const attacker = await signUp(w.app);
  const created = await json(await createKey(w, attacker.access));
  const key = String(created.key);
  const keyAuth = { "x-api-key": key };
  assertEquals((await w.app.request("/uploads", { headers: keyAuth })).status, 200);

  await t.step("a password reset by the real owner kills the attacker's API key", async () => {
    const token = await mailedResetToken(w, attacker.user.email);
    const res = await w.app.request(
      "/auth/password/reset",
      jsonInit("POST", { token, new_password: NEW_PASSWORD }),
    );
    assertEquals(res.status, 204);
    await assertProblem(
      await w.app.request("/uploads", { headers: keyAuth }),
      401,
      "token_invalid",
    );
    await assertProblem(
      await w.app.request("/users/me", { headers: bearer(attacker.access) }),
      401,
      "token_revoked",
    );
  });
  await t.step("the reset is audited with what it revoked", async () => {
    const [event] = await auditEvents(w.kv, "credentials.revoked_all");
    assertEquals(event?.details, {
      reason: "password_reset",
      sessions: 1,
      api_keys: 1,
      oauth2_grants: 0,
    });
  });
  await t.step("a successful reset also verifies the address", async () => {
    const me = await tokenPair(await login(w.app, { ...attacker.user, password: NEW_PASSWORD }));
    const body = await json(await w.app.request("/users/me", { headers: bearer(me.access) }));
    assertEquals(body.email_verified, true);
  });
});

Deno.test("logout-all revokes API keys too (credentials outlive logout-all)", async () => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  const key = String((await json(await createKey(w, s.access))).key);
  assertEquals((await w.app.request("/api-keys", { headers: bearer(s.access) })).status, 200);
  const res = await w.app.request("/auth/logout-all", {
    method: "POST",
    headers: bearer(s.access),
  });
  assertEquals(res.status, 204);
  await assertProblem(
    await w.app.request("/uploads", { headers: { "x-api-key": key } }),
    401,
    "token_invalid",
  );
});

Deno.test("a password change keeps API keys unless revoke_api_keys is true", async (t) => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  const keep = String((await json(await createKey(w, s.access))).key);
  let access = s.access;
  await t.step("a plain change keeps the key (the owner proved the old password)", async () => {
    const res = await w.app.request(
      "/auth/password/change",
      jsonInit(
        "POST",
        { current_password: GOOD_PASSWORD, new_password: NEW_PASSWORD },
        bearer(access),
      ),
    );
    access = (await tokenPair(res)).access;
    assertEquals((await w.app.request("/uploads", { headers: { "x-api-key": keep } })).status, 200);
  });
  await t.step("revoke_api_keys: true kills it", async () => {
    const res = await w.app.request(
      "/auth/password/change",
      jsonInit(
        "POST",
        {
          current_password: NEW_PASSWORD,
          new_password: "Third-Unique-Pass-93!",
          revoke_api_keys: true,
        },
        bearer(access),
      ),
    );
    assertEquals(res.status, 200);
    await assertProblem(
      await w.app.request("/uploads", { headers: { "x-api-key": keep } }),
      401,
      "token_invalid",
    );
  });
});

Deno.test("unverified accounts cannot create API keys or upload (account pre-hijacking: email verification)", async (t) => {
  await using w = await openWorld({ env: { REQUIRE_EMAIL_VERIFICATION: "true" } });
  const s = await signUp(w.app);
  await w.services.background.settled();

  await t.step("registration mails a single-use link with the token in the fragment", () => {
    const mail = w.mailer.sent.find((m) => m.to === s.user.email);
    assert(mail !== undefined);
    assertMatch(mail.text, /\/verify-email#token=[A-Za-z0-9_-]{43}\n/);
    assertMatch(mail.text, /within 24 hours/);
  });
  await t.step("the account can log in and read itself, unverified", async () => {
    const body = await json(await w.app.request("/users/me", { headers: bearer(s.access) }));
    assertEquals(body.email_verified, false);
  });
  await t.step("POST /api-keys and POST /uploads are 403 email_unverified", async () => {
    await assertProblem(await createKey(w, s.access), 403, "email_unverified");
    const res = await w.app.request("/uploads", {
      method: "POST",
      body: uploadForm(),
      headers: bearer(s.access),
    });
    await assertProblem(res, 403, "email_unverified");
  });
  const token = /#token=([A-Za-z0-9_-]{43})/.exec(w.mailer.sent.at(-1)!.text)![1]!;
  await t.step("the token is stored only as a hash", async () => {
    for await (const entry of w.kv.list({ prefix: [] })) {
      assert(!JSON.stringify([entry.key, entry.value]).includes(token));
    }
  });
  await t.step("confirming verifies; the token is single use", async () => {
    const confirm = () => w.app.request("/auth/verify-email/confirm", jsonInit("POST", { token }));
    assertEquals((await confirm()).status, 204);
    await assertProblem(await confirm(), 400, "verification_token_invalid");
    assertEquals((await createKey(w, s.access)).status, 201);
  });
  await t.step("forged and malformed tokens are 400 verification_token_invalid", async () => {
    for (const bad of ["x", "A".repeat(43), `${token.slice(0, -1)}A`]) {
      const res = await w.app.request(
        "/auth/verify-email/confirm",
        jsonInit("POST", { token: bad }),
      );
      await assertProblem(res, 400, "verification_token_invalid");
    }
  });
});

Deno.test("a verification link expires after 24 hours and dies with an address change", async (t) => {
  await using w = await openWorld({ env: { REQUIRE_EMAIL_VERIFICATION: "true" } });
  const s = await signUp(w.app);
  await w.services.background.settled();
  const token = /#token=([A-Za-z0-9_-]{43})/.exec(w.mailer.sent.at(-1)!.text)![1]!;
  await t.step("24 hours later it is refused", async () => {
    w.clock.advance(24 * 3_600_000);
    const res = await w.app.request("/auth/verify-email/confirm", jsonInit("POST", { token }));
    await assertProblem(res, 400, "verification_token_invalid");
  });
  await t.step("POST /auth/verify-email/request mails a new one (202)", async () => {
    const before = w.mailer.sent.length;
    const res = await w.app.request("/auth/verify-email/request", {
      method: "POST",
      headers: bearer((await tokenPair(await login(w.app, s.user))).access),
    });
    assertEquals(res.status, 202);
    await w.services.background.settled();
    assertEquals(w.mailer.sent.length, before + 1);
  });
});

async function scopedAccess(w: World, s: SignedUp, scope: string): Promise<string> {
  return (await tokenPair(await login(w.app, s.user, { scope }))).access;
}

Deno.test("an API key never gets scopes the asking token lacks (narrow token mints a full-scope key)", async () => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  const narrow = await scopedAccess(w, s, "apikeys:manage uploads:read");
  await assertProblem(await createKey(w, narrow, ["profile:read"]), 403, "insufficient_scope");
  await assertProblem(
    await createKey(w, narrow, ["uploads:read", "uploads:write"]),
    403,
    "insufficient_scope",
  );
  assertEquals((await createKey(w, narrow, ["uploads:read"])).status, 201);
});

Deno.test("failed logins from elsewhere never lock out a trusted device (anyone can lock any account)", async (t) => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  const first = await login(w.app, s.user);
  const deviceToken = String((await json(first.clone())).device_token);
  await t.step("a successful login returns a device token and sets a __Host- device cookie", () => {
    assertMatch(deviceToken, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    const cookie = first.headers.get("set-cookie") ?? "";
    assertMatch(cookie, /__Host-bulwark_device_[A-Za-z0-9_-]{12}=/);
    assertMatch(cookie, /HttpOnly/);
    assertMatch(cookie, /Secure/);
    assertMatch(cookie, /SameSite=Strict/);
    assert(!cookie.includes(encodeURIComponent(s.user.email)) && !cookie.includes(s.user.email));
  });
  await t.step("an attacker's five wrong passwords lock untrusted clients out", async () => {
    for (let i = 0; i < 5; i++) {
      w.clock.advance(60_000);
      await login(w.app, { ...s.user, password: "Wrong-Password-1!" }, { ip: "198.51.100.9" });
    }
    w.clock.advance(60_000);
    await assertProblem(await login(w.app, s.user), 423, "account_locked");
  });
  await t.step("the owner's device, presenting its token, still logs in", async () => {
    const res = await w.app.request(
      "/auth/login",
      jsonInit("POST", { ...credentials(s), device_token: deviceToken }),
    );
    assertEquals(res.status, 200);
  });
  await t.step("the device cookie works as well as the body field", async () => {
    const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
    const res = await w.app.request(
      "/auth/login",
      jsonInit("POST", credentials(s), { cookie }),
    );
    assertEquals(res.status, 200);
  });
  await t.step("a device token of another account is worth nothing here", async () => {
    const other = await signUp(w.app);
    const otherToken = String((await json(await login(w.app, other.user))).device_token);
    const res = await w.app.request(
      "/auth/login",
      jsonInit("POST", { ...credentials(s), device_token: otherToken }),
    );
    await assertProblem(res, 423, "account_locked");
  });
  await t.step("a trusted device has its own budget: its own failures lock only it", async () => {
    w.clock.advance(16 * 60_000); // the untrusted lock has run out
    for (let i = 0; i < 5; i++) {
      w.clock.advance(60_000);
      await w.app.request(
        "/auth/login",
        jsonInit("POST", {
          email: s.user.email,
          password: "Nope-Nope-42!",
          device_token: deviceToken,
        }),
      );
    }
    w.clock.advance(60_000);
    const device = await w.app.request(
      "/auth/login",
      jsonInit("POST", { ...credentials(s), device_token: deviceToken }),
    );
    await assertProblem(device, 423, "account_locked");
    assertEquals((await login(w.app, s.user)).status, 200, "untrusted clients are unaffected");
  });
});

function credentials(s: SignedUp): { email: string; password: string } {
  return { email: s.user.email, password: s.user.password };
}

Deno.test("forgot and register requests do not spend an account's login budget (lockout DoS via forgot)", async () => {
  await using w = await openWorld({ env: { RATE_LIMIT_LOGIN: "3/minute" } });
  const s = await signUp(w.app);
  for (let i = 0; i < 5; i++) {
    await w.app.request(
      "/auth/password/forgot",
      jsonInit("POST", { email: s.user.email }),
      peer(`198.51.100.${i}`),
    );
    await w.app.request(
      "/auth/register",
      jsonInit("POST", { email: s.user.email, password: GOOD_PASSWORD }),
      peer(`198.51.100.${20 + i}`),
    );
  }
  assertEquals((await login(w.app, s.user, { ip: "203.0.113.50" })).status, 200);
});

Deno.test("the API-key cap counts keys in their grace period (key cap bypassed by rotation)", async (t) => {
  await using w = await openWorld({ env: { MAX_API_KEYS_PER_USER: "3" } });
  const s = await signUp(w.app);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push(String((await json(await createKey(w, s.access))).id));
  const rotate = (id: string, grace_hours?: number) =>
    w.app.request(
      `/api-keys/${id}/rotate`,
      jsonInit("POST", grace_hours === undefined ? {} : { grace_hours }, bearer(s.access)),
    );
  await t.step("at the cap with nothing in grace, a rotation with grace is 409", async () => {
    await assertProblem(await rotate(ids[0]!), 409, "conflict");
  });
  await t.step("a rotation without grace keeps within the cap", async () => {
    assertEquals((await rotate(ids[0]!, 0)).status, 201);
  });
  await t.step("creating a key while the others are in grace is refused", async () => {
    await assertProblem(await createKey(w, s.access), 409, "conflict");
  });
  await t.step("never more than the cap of keys authenticate", async () => {
    const list = await json(await w.app.request("/api-keys", { headers: bearer(s.access) }));
    const live = (list as unknown as Array<{ expires_at: string }>).filter((k) =>
      new Date(k.expires_at) > w.clock.now()
    );
    assert(live.length <= 3, `live keys: ${live.length}`);
  });
});

Deno.test("reset mails are limited per account (reset-mail flooding)", async (t) => {
  await using w = await openWorld({
    env: { MAIL_ACCOUNT_INTERVAL_MINUTES: "5", MAIL_ACCOUNT_DAILY_LIMIT: "10" },
  });
  const s = await signUp(w.app);
  const forgot = () =>
    w.app.request("/auth/password/forgot", jsonInit("POST", { email: s.user.email }));
  await t.step("three requests in a row: all 202, one mail", async () => {
    for (let i = 0; i < 3; i++) {
      assertEquals((await forgot()).status, 202);
      await w.services.background.settled();
    }
    await w.services.background.settled();
    assertEquals(w.mailer.sent.length, 1);
  });
  await t.step("the extra requests are audited", async () => {
    const suppressed = await auditEvents(w.kv, "mail.suppressed");
    assertEquals(suppressed.length, 2);
    assertEquals(suppressed[0]?.details, { purpose: "password_reset", reason: "budget" });
  });
  await t.step("at most 10 a day, however the requests are spread", async () => {
    for (let i = 0; i < 30; i++) {
      w.clock.advance(5 * 60_000);
      assertEquals((await forgot()).status, 202);
      // Each mail is sent in the background at the clock's time of its request.
      await w.services.background.settled();
    }
    await w.services.background.settled();
    assertEquals(w.mailer.sent.length, 10);
  });
});

Deno.test("an access token dies with its session's absolute end (token outlives its session)", async () => {
  await using w = await openWorld({ env: { SESSION_MAX_HOURS: "1", SESSION_IDLE_MINUTES: "60" } });
  const s = await signUp(w.app);
  w.clock.advance(59 * 60_000);
  const refreshed = await tokenPair(
    await w.app.request("/auth/refresh", jsonInit("POST", { refresh_token: s.refresh })),
  );
  assertEquals(
    (await w.app.request("/users/me", { headers: bearer(refreshed.access) })).status,
    200,
  );
  w.clock.advance(2 * 60_000); // past the session's end, well inside the token's 30 minutes
  await assertProblem(
    await w.app.request("/users/me", { headers: bearer(refreshed.access) }),
    401,
    "token_revoked",
  );
});

Deno.test("X-Forwarded-For entries with ports are parsed (every client in the proxy's bucket)", async () => {
  await using w = await openWorld({ env: { TRUST_PROXY: "1", RATE_LIMIT_ANONYMOUS: "1/minute" } });
  const from = (xff: string) =>
    w.app.request("/openapi.json", { headers: { "x-forwarded-for": xff } }, peer("10.0.0.1"));
  assertEquals((await from("203.0.113.5:4711")).status, 200);
  assertEquals((await from("203.0.113.6:4711")).status, 200, "another client, another bucket");
  assertEquals((await from("[2001:db8::1]:443")).status, 200);
  await assertProblem(await from("203.0.113.5:5000"), 429, "rate_limited");
});

Deno.test("LOCKOUT_THRESHOLD at its maximum never breaks logins (lockout expireIn overflow)", async () => {
  await using w = await openWorld({ env: { LOCKOUT_THRESHOLD: "100" } });
  const s = await signUp(w.app);
  for (let i = 0; i < 60; i++) {
    w.clock.advance(10 * 60_000); // past any (capped) progressive delay
    const res = await login(w.app, { ...s.user, password: "Wrong-Password-1!" });
    const text = await res.text();
    assert(res.status < 500, `attempt ${i}: ${res.status} ${text}`);
  }
  w.clock.advance(10 * 60_000);
  assertEquals((await login(w.app, s.user)).status, 200);
});

Deno.test("a brute-force run writes a bounded number of audit records (audit growth)", async () => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  const count = async () => (await auditEvents(w.kv, "auth.login")).length;
  const before = await count();
  // 300 guesses a minute for 3 minutes from one network: one record per minute stays.
  for (let minute = 0; minute < 3; minute++) {
    for (let i = 0; i < 300; i++) {
      w.clock.advance(200);
      await w.services.audit.record({
        type: "auth.login",
        outcome: "failure",
        meta: { ip: "198.51.100.7", userAgent: "x", requestId: "r" },
        details: { reason: "wrong_password" },
        sample: { key: `198.51.100.7|${s.id}` },
      });
    }
  }
  const written = (await count()) - before;
  assert(written <= 4, `records written: ${written}`);
  const last = (await auditEvents(w.kv, "auth.login")).at(-1);
  assert(Number(last?.details.repeats_before) >= 299, "the repeats are counted, not lost");
});

Deno.test("403 refusals by one caller are aggregated in the audit trail (audit growth)", async () => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  const narrow = await scopedAccess(w, s, "profile:read");
  // Nine: the tenth would trip the privilege-probing intrusion rule (a block, 423).
  for (let i = 0; i < 9; i++) {
    const res = await w.app.request("/uploads", { headers: bearer(narrow) });
    assertEquals(res.status, 403);
    await res.body?.cancel();
  }
  const denied = await auditEvents(w.kv, "authz.denied");
  assertEquals(denied.length, 1);
});
