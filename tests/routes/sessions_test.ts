import { login, randomUser, signUp, tokenPair } from "../_helpers/accounts.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertNotEquals,
  assertProblem,
} from "../_helpers/assert.ts";
import { bearer, json, jsonInit, peer } from "../_helpers/http.ts";
import { auditEvents, openWorld, type World } from "../_helpers/world.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

interface SessionOut {
  id: string;
  created_at: string;
  last_seen_at: string;
  ip: string;
  user_agent: string;
  remember_me: boolean;
  current: boolean;
}

async function listSessions(w: World, access: string): Promise<SessionOut[]> {
  const res = await w.app.request("/auth/sessions", { headers: bearer(access) });
  assertEquals(res.status, 200);
  assertMatch(res.headers.get("content-type") ?? "", /^application\/json/);
  return await res.json() as SessionOut[];
}

/** POST /auth/refresh with a JSON body. */
function refresh(
  w: World,
  token: string,
  options: { userAgent?: string; ip?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = {};
  if (options.userAgent !== undefined) headers["user-agent"] = options.userAgent;
  return Promise.resolve(w.app.request(
    "/auth/refresh",
    jsonInit("POST", { refresh_token: token }, headers),
    options.ip === undefined ? undefined : peer(options.ip),
  ));
}

async function refreshOk(
  w: World,
  token: string,
  options: { userAgent?: string; ip?: string } = {},
): Promise<{ access: string; refresh: string; body: Record<string, unknown> }> {
  const res = await refresh(w, token, options);
  assertEquals(res.status, 200, await res.clone().text());
  const body = await json(res);
  return { access: String(body.access_token), refresh: String(body.refresh_token), body };
}

Deno.test("GET /auth/sessions lists the caller's sessions", async (t) => {
  await using w = await openWorld();
  const user = randomUser();
  const s = await signUp(w.app, user);
  w.clock.advance(1000);
  const second = await tokenPair(
    await login(w.app, user, {
      remember_me: true,
      userAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
      ip: "198.51.100.23",
    }),
  );
  const other = await signUp(w.app);

  await t.step("200 with the documented shape, newest first", async () => {
    const list = await listSessions(w, second.access);
    assertEquals(list.length, 2);
    for (const session of list) {
      assertEquals(Object.keys(session).sort(), [
        "created_at",
        "current",
        "id",
        "ip",
        "last_seen_at",
        "remember_me",
        "user_agent",
      ]);
    }
    const [newest, oldest] = list;
    assertEquals(newest, {
      id: second.sessionId,
      created_at: "2026-01-01T00:00:01.000Z",
      last_seen_at: "2026-01-01T00:00:01.000Z",
      ip: "198.51.100.23",
      user_agent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
      remember_me: true,
      current: true,
    });
    assertEquals(oldest?.id, s.sessionId);
    assertEquals(oldest?.remember_me, false);
    assertEquals(oldest?.current, false);
  });
  await t.step("`current` follows the calling session", async () => {
    const list = await listSessions(w, s.access);
    assertEquals(
      list.filter((x) => x.current).map((x) => x.id),
      [s.sessionId],
    );
  });
  await t.step("another user's sessions are never listed", async () => {
    const mine = (await listSessions(w, s.access)).map((x) => x.id);
    assert(!mine.includes(other.sessionId));
    const theirs = await listSessions(w, other.access);
    assertEquals(theirs.map((x) => x.id), [other.sessionId]);
  });
  await t.step("no secret of the session is exposed", async () => {
    const res = await w.app.request("/auth/sessions", { headers: bearer(s.access) });
    const text = await res.text();
    for (const field of ["refresh_jti", "fingerprint", "csrf_hash", "user_id", "scope"]) {
      assert(!text.includes(field), field);
    }
  });
  await t.step("401 without a token", async () => {
    const res = await w.app.request("/auth/sessions");
    await assertProblem(res, 401, "token_invalid");
  });
});

Deno.test("DELETE /auth/sessions/{id} revokes one of my sessions", async (t) => {
  await using w = await openWorld();
  const user = randomUser();
  const s = await signUp(w.app, user);
  const second = await tokenPair(await login(w.app, user));
  const other = await signUp(w.app);

  await t.step("404 for another user's session, which keeps working", async () => {
    const res = await w.app.request(`/auth/sessions/${other.sessionId}`, {
      method: "DELETE",
      headers: bearer(s.access),
    });
    assertEquals(res.status, 404);
    assertEquals((await json(res)).code, "not_found");
    const me = await w.app.request("/users/me", { headers: bearer(other.access) });
    assertEquals(me.status, 200);
    const refreshed = await refreshOk(w, other.refresh);
    assertEquals(refreshed.body.session_id, other.sessionId);
  });
  await t.step("404 for an unknown id, same answer as someone else's", async () => {
    const res = await w.app.request(`/auth/sessions/${"A".repeat(22)}`, {
      method: "DELETE",
      headers: bearer(s.access),
    });
    assertEquals(res.status, 404);
    assertEquals((await json(res)).code, "not_found");
  });
  await t.step("422 for a malformed id", async () => {
    for (const id of ["short", "x".repeat(65), "%27%20OR%201%3D1--", "abc.def.ghi%2Fjkl"]) {
      const res = await w.app.request(`/auth/sessions/${id}`, {
        method: "DELETE",
        headers: bearer(s.access),
      });
      assertEquals(res.status, 422, id);
      assertEquals((await json(res)).code, "validation_failed");
    }
  });
  await t.step("204, then that session's access and refresh tokens stop working", async () => {
    const res = await w.app.request(`/auth/sessions/${second.sessionId}`, {
      method: "DELETE",
      headers: bearer(s.access),
    });
    assertEquals(res.status, 204);
    assertEquals(await res.text(), "");
    const me = await w.app.request("/users/me", { headers: bearer(second.access) });
    await assertProblem(me, 401, "token_revoked");
    await assertProblem(await refresh(w, second.refresh), 401, "token_revoked");
  });
  await t.step("the calling session is untouched and the revocation is audited", async () => {
    assertEquals((await w.app.request("/users/me", { headers: bearer(s.access) })).status, 200);
    assertEquals((await listSessions(w, s.access)).map((x) => x.id), [s.sessionId]);
    const events = await auditEvents(w.kv, "session.revoked");
    assertEquals(events.map((e) => e.details.session_id), [second.sessionId]);
    assertEquals(events[0]?.user_id, s.id);
  });
  await t.step("a second delete of the same id is 404", async () => {
    const res = await w.app.request(`/auth/sessions/${second.sessionId}`, {
      method: "DELETE",
      headers: bearer(s.access),
    });
    assertEquals(res.status, 404);
  });
  await t.step("deleting the calling session logs the caller out", async () => {
    const res = await w.app.request(`/auth/sessions/${s.sessionId}`, {
      method: "DELETE",
      headers: bearer(s.access),
    });
    assertEquals(res.status, 204);
    await assertProblem(
      await w.app.request("/users/me", { headers: bearer(s.access) }),
      401,
      "token_revoked",
    );
  });
});

Deno.test("a login past MAX_SESSIONS_PER_USER evicts the oldest session", async () => {
  await using w = await openWorld({ env: { MAX_SESSIONS_PER_USER: "5" } });
  const user = randomUser();
  const first = await signUp(w.app, user);
  const sessions = [first];
  for (let i = 0; i < 4; i++) {
    w.clock.advance(1000);
    sessions.push({ ...first, ...await tokenPair(await login(w.app, user)) });
  }
  assertEquals((await listSessions(w, first.access)).length, 5);

  w.clock.advance(1000);
  const sixth = await tokenPair(await login(w.app, user));

  const live = (await listSessions(w, sixth.access)).map((x) => x.id);
  assertEquals(live.length, 5);
  assert(!live.includes(first.sessionId), "the oldest session is gone");
  for (const s of sessions.slice(1)) assert(live.includes(s.sessionId));
  await assertProblem(await refresh(w, first.refresh), 401, "token_revoked");
  await assertProblem(
    await w.app.request("/users/me", { headers: bearer(first.access) }),
    401,
    "token_revoked",
  );
  const second = sessions[1]!;
  assertEquals((await refreshOk(w, second.refresh)).body.session_id, second.sessionId);
  const events = await auditEvents(w.kv, "session.evicted");
  assertEquals(events.length, 1);
  assertEquals(events[0]?.outcome, "success");
  assertEquals(events[0]?.user_id, first.id);
  assertEquals(events[0]?.details, { session_id: first.sessionId, max_sessions: 5 });
});

Deno.test("a session idle past SESSION_IDLE_MINUTES can no longer be refreshed", async (t) => {
  await using w = await openWorld();
  await t.step("a refresh within the window works and moves last_seen_at", async () => {
    const s = await signUp(w.app);
    w.clock.advance(59 * MINUTE);
    const next = await refreshOk(w, s.refresh);
    const [session] = await listSessions(w, next.access);
    assertEquals(session?.created_at, "2026-01-01T00:00:00.000Z");
    assertEquals(session?.last_seen_at, "2026-01-01T00:59:00.000Z");
  });
  await t.step("exactly 60 idle minutes is still inside the window", async () => {
    const s = await signUp(w.app);
    w.clock.advance(60 * MINUTE);
    await refreshOk(w, s.refresh);
  });
  await t.step("60 minutes and 1 ms is refused, revoked and audited", async () => {
    const s = await signUp(w.app);
    w.clock.advance(20 * MINUTE);
    const kept = await refreshOk(w, s.refresh);
    // Idle time counts from the last refresh, not from the login.
    w.clock.advance(60 * MINUTE + 1);
    await assertProblem(await refresh(w, kept.refresh), 401, "token_expired");
    const events = await auditEvents(w.kv, "session.idle_timeout");
    assertEquals(events.map((e) => e.details.session_id), [s.sessionId]);
    assertEquals(events[0]?.outcome, "failure");
    // Revoked, not merely refused: a later attempt finds no session.
    await assertProblem(await refresh(w, kept.refresh), 401, "token_revoked");
  });
});

Deno.test("a session ends at its absolute lifetime", async (t) => {
  await t.step("without remember_me, refreshing does not keep it past 12 hours", async () => {
    await using w = await openWorld();
    const s = await signUp(w.app);
    let token = s.refresh;
    let elapsed = 0;
    while (elapsed + 50 * MINUTE < 12 * HOUR) {
      w.clock.advance(50 * MINUTE);
      elapsed += 50 * MINUTE;
      const next = await refreshOk(w, token);
      assertEquals(next.body.refresh_expires_in, (12 * HOUR - elapsed) / 1000);
      token = next.refresh;
    }
    w.clock.advance(12 * HOUR - elapsed);
    await assertProblem(await refresh(w, token), 401, "token_expired");
  });
  await t.step("the 12-hour end is exact on the clock", async () => {
    // Idle timeout off the table (30 days) so only the absolute lifetime applies.
    await using w = await openWorld({ env: { SESSION_IDLE_MINUTES: "43200" } });
    const s = await signUp(w.app);
    w.clock.advance(12 * HOUR - 1);
    const next = await refreshOk(w, s.refresh);
    assertEquals(next.body.refresh_expires_in, 0);
    w.clock.advance(1);
    await assertProblem(await refresh(w, next.refresh), 401, "token_expired");
  });
  await t.step("with remember_me it outlives 12 hours and ends after 7 days", async () => {
    await using w = await openWorld({ env: { SESSION_IDLE_MINUTES: "43200" } });
    const user = randomUser();
    await signUp(w.app, user);
    const s = await tokenPair(await login(w.app, user, { remember_me: true }));
    w.clock.advance(12 * HOUR + MINUTE);
    const next = await refreshOk(w, s.refresh);
    assertEquals(next.body.refresh_expires_in, (7 * DAY - 12 * HOUR - MINUTE) / 1000);
    w.clock.advance(7 * DAY - 12 * HOUR - MINUTE);
    await assertProblem(await refresh(w, next.refresh), 401, "token_expired");
  });
  await t.step("with remember_me and the default idle timeout, kept alive for a day", async () => {
    await using w = await openWorld();
    const user = randomUser();
    await signUp(w.app, user);
    let token = (await tokenPair(await login(w.app, user, { remember_me: true }))).refresh;
    for (let elapsed = 0; elapsed < DAY; elapsed += 55 * MINUTE) {
      w.clock.advance(55 * MINUTE);
      token = (await refreshOk(w, token)).refresh;
    }
  });
});

Deno.test("a refresh from another client revokes the session", async (t) => {
  await t.step("a different User-Agent is 401 token_revoked and audited", async () => {
    await using w = await openWorld();
    const user = randomUser();
    await signUp(w.app, user);
    const ua = "Mozilla/5.0 (Macintosh) Safari/605.1.15";
    const s = await tokenPair(await login(w.app, user, { userAgent: ua }));
    const next = await refreshOk(w, s.refresh, { userAgent: ua });
    await assertProblem(
      await refresh(w, next.refresh, { userAgent: "curl/8.9.1" }),
      401,
      "token_revoked",
    );
    // The rightful client is cut off too: the token may have been copied.
    await assertProblem(await refresh(w, next.refresh, { userAgent: ua }), 401, "token_revoked");
    await assertProblem(
      await w.app.request("/users/me", { headers: bearer(next.access) }),
      401,
      "token_revoked",
    );
    const events = await auditEvents(w.kv, "session.fingerprint_mismatch");
    assertEquals(events.map((e) => e.details.session_id), [s.sessionId]);
    assertEquals(events[0]?.outcome, "failure");
  });
  await t.step("without SESSION_BIND_IP a new address is fine", async () => {
    await using w = await openWorld();
    const user = randomUser();
    await signUp(w.app, user);
    const s = await tokenPair(await login(w.app, user, { ip: "203.0.113.7" }));
    await refreshOk(w, s.refresh, { ip: "192.0.2.200" });
  });
  await t.step("with SESSION_BIND_IP the same /24 works, another /24 is refused", async () => {
    await using w = await openWorld({ env: { SESSION_BIND_IP: "true" } });
    const user = randomUser();
    await signUp(w.app, user);
    const s = await tokenPair(await login(w.app, user, { ip: "203.0.113.7" }));
    const roamed = await refreshOk(w, s.refresh, { ip: "203.0.113.250" });
    const session = (await listSessions(w, roamed.access)).find((x) => x.id === s.sessionId);
    assertEquals(session?.ip, "203.0.113.250", "the list shows the latest address");
    await assertProblem(
      await refresh(w, roamed.refresh, { ip: "203.0.114.7" }),
      401,
      "token_revoked",
    );
    await assertProblem(
      await refresh(w, roamed.refresh, { ip: "203.0.113.7" }),
      401,
      "token_revoked",
    );
    const events = await auditEvents(w.kv, "session.fingerprint_mismatch");
    assertEquals(events.map((e) => e.details.session_id), [s.sessionId]);
  });
});

/** A cookie as a `Set-Cookie` header describes it. */
interface SetCookie {
  value: string;
  attributes: Map<string, string>;
}

function setCookies(res: Response): Map<string, SetCookie> {
  const out = new Map<string, SetCookie>();
  for (const line of res.headers.getSetCookie()) {
    const [pair, ...attrs] = line.split(";").map((s) => s.trim());
    const eq = pair!.indexOf("=");
    const attributes = new Map<string, string>();
    for (const attr of attrs) {
      const i = attr.indexOf("=");
      if (i === -1) attributes.set(attr.toLowerCase(), "");
      else attributes.set(attr.slice(0, i).toLowerCase(), attr.slice(i + 1));
    }
    out.set(pair!.slice(0, eq), { value: decodeURIComponent(pair!.slice(eq + 1)), attributes });
  }
  return out;
}

const REFRESH_COOKIE = "__Host-bulwark_refresh";
const CSRF_COOKIE = "__Host-bulwark_csrf";

interface Jar {
  refresh: string;
  csrf: string;
}

function cookieHeader(jar: Jar): string {
  return `${REFRESH_COOKIE}=${jar.refresh}; ${CSRF_COOKIE}=${jar.csrf}`;
}

/** Logs in with `use_cookies: true`; returns the cookie values and the body. */
async function cookieLogin(
  w: World,
): Promise<{ jar: Jar; body: Record<string, unknown>; res: Response }> {
  const user = randomUser();
  await signUp(w.app, user);
  const res = await login(w.app, user, { use_cookies: true });
  assertEquals(res.status, 200);
  const cookies = setCookies(res);
  const jar = {
    refresh: cookies.get(REFRESH_COOKIE)!.value,
    csrf: cookies.get(CSRF_COOKIE)!.value,
  };
  return { jar, body: await json(res), res };
}

/** A cookie refresh the way a browser sends it: no body, no content type. */
function cookieRefresh(w: World, jar: Jar, csrfHeader?: string): Promise<Response> {
  const headers: Record<string, string> = { cookie: cookieHeader(jar) };
  if (csrfHeader !== undefined) headers["x-csrf-token"] = csrfHeader;
  return Promise.resolve(w.app.request("/auth/refresh", { method: "POST", headers }));
}

async function assertCsrfFailed(res: Response): Promise<void> {
  assertEquals(res.status, 403);
  assertMatch(res.headers.get("content-type") ?? "", /^application\/problem\+json/);
  assertEquals((await json(res)).code, "csrf_failed");
  assertEquals(res.headers.getSetCookie(), [], "a refusal sets no cookie");
}

Deno.test("cookie mode keeps the refresh token in a __Host- cookie behind CSRF", async (t) => {
  await using w = await openWorld();

  await t.step("login sets a locked-down refresh cookie and a readable CSRF cookie", async () => {
    const { res, body, jar } = await cookieLogin(w);
    const cookies = setCookies(res);
    const refreshCookie = cookies.get(REFRESH_COOKIE)!;
    assertEquals(refreshCookie.attributes.get("path"), "/");
    assertEquals(refreshCookie.attributes.get("samesite"), "Strict");
    assertEquals(refreshCookie.attributes.get("max-age"), String(12 * 3600));
    assert(refreshCookie.attributes.has("httponly"));
    assert(refreshCookie.attributes.has("secure"));
    assert(!refreshCookie.attributes.has("domain"), "__Host- cookies carry no Domain");
    const csrfCookie = cookies.get(CSRF_COOKIE)!;
    assert(!csrfCookie.attributes.has("httponly"), "scripts must read the CSRF cookie");
    assert(csrfCookie.attributes.has("secure"));
    assertEquals(csrfCookie.attributes.get("samesite"), "Strict");
    assertEquals(csrfCookie.attributes.get("path"), "/");
    assertMatch(jar.csrf, /^[A-Za-z0-9_-]{43}$/);
    assert(!("refresh_token" in body), "the body must not carry the refresh token");
    assertEquals(typeof body.access_token, "string");
    assert(!JSON.stringify(body).includes(jar.refresh));
  });
  await t.step("a cookie refresh without X-CSRF-Token is 403 csrf_failed", async () => {
    const { jar } = await cookieLogin(w);
    await assertCsrfFailed(await cookieRefresh(w, jar));
  });
  await t.step("a wrong X-CSRF-Token is 403, and does not revoke the session", async () => {
    const { jar } = await cookieLogin(w);
    await assertCsrfFailed(await cookieRefresh(w, jar, "A".repeat(43)));
    await assertCsrfFailed(await cookieRefresh(w, jar, ""));
    // Header and cookie agree but neither belongs to this session (double-submit forgery).
    await assertCsrfFailed(
      await cookieRefresh(w, { refresh: jar.refresh, csrf: "B".repeat(43) }, "B".repeat(43)),
    );
    const res = await cookieRefresh(w, jar, jar.csrf);
    assertEquals(res.status, 200);
  });
  await t.step("the refresh cookie's token in a JSON body still needs the CSRF token", async () => {
    const { jar } = await cookieLogin(w);
    const res = await w.app.request(
      "/auth/refresh",
      jsonInit("POST", { refresh_token: jar.refresh }),
    );
    await assertCsrfFailed(res);
  });
  await t.step("the matching header refreshes and rotates both cookies", async () => {
    const { jar, body: loginBody } = await cookieLogin(w);
    const res = await cookieRefresh(w, jar, jar.csrf);
    assertEquals(res.status, 200);
    const body = await json(res);
    assert(!("refresh_token" in body));
    assertEquals(body.session_id, loginBody.session_id);
    const cookies = setCookies(res);
    const next = {
      refresh: cookies.get(REFRESH_COOKIE)!.value,
      csrf: cookies.get(CSRF_COOKIE)!.value,
    };
    assertNotEquals(next.refresh, jar.refresh);
    assertNotEquals(next.csrf, jar.csrf);
    const me = await w.app.request("/users/me", { headers: bearer(String(body.access_token)) });
    assertEquals(me.status, 200);
    // The new pair works…
    const again = await cookieRefresh(w, next, next.csrf);
    assertEquals(again.status, 200);
    // …and the spent one is dead (403 today; see the ignored reuse-detection test below).
    const stale = await cookieRefresh(w, jar, jar.csrf);
    assert([401, 403].includes(stale.status), String(stale.status));
    assertEquals(stale.headers.getSetCookie(), []);
  });
  await t.step(
    "the spent refresh cookie with the current CSRF token revokes the session",
    async () => {
      const { jar } = await cookieLogin(w);
      const res = await cookieRefresh(w, jar, jar.csrf);
      assertEquals(res.status, 200);
      const cookies = setCookies(res);
      const next = {
        refresh: cookies.get(REFRESH_COOKIE)!.value,
        csrf: cookies.get(CSRF_COOKIE)!.value,
      };
      await assertProblem(
        await cookieRefresh(w, { refresh: jar.refresh, csrf: next.csrf }, next.csrf),
        401,
        "token_revoked",
      );
      await assertProblem(await cookieRefresh(w, next, next.csrf), 401, "token_revoked");
    },
  );
  await t.step(
    "logout with the cookie and CSRF header is 204 and clears both cookies",
    async () => {
      const { jar, body } = await cookieLogin(w);
      const denied = await w.app.request("/auth/logout", {
        method: "POST",
        headers: { cookie: cookieHeader(jar) },
      });
      await assertCsrfFailed(denied);
      const res = await w.app.request("/auth/logout", {
        method: "POST",
        headers: { cookie: cookieHeader(jar), "x-csrf-token": jar.csrf },
      });
      assertEquals(res.status, 204);
      const cleared = setCookies(res);
      for (const name of [REFRESH_COOKIE, CSRF_COOKIE]) {
        const cookie = cleared.get(name);
        assert(cookie !== undefined, `${name} is cleared`);
        assertEquals(cookie.value, "");
        assertEquals(cookie.attributes.get("max-age"), "0");
        assertEquals(cookie.attributes.get("path"), "/");
        assert(cookie.attributes.has("secure"));
      }
      await assertProblem(await cookieRefresh(w, jar, jar.csrf), 401, "token_revoked");
      await assertProblem(
        await w.app.request("/users/me", { headers: bearer(String(body.access_token)) }),
        401,
        "token_revoked",
      );
    },
  );
  await t.step("a forged refresh cookie is 401 token_invalid", async () => {
    const { jar } = await cookieLogin(w);
    const [h, p] = jar.refresh.split(".");
    const forged = [
      "forged",
      `${h}.${p}.${"A".repeat(43)}`,
      `${h}.${p}.`,
      jar.refresh.slice(0, -2),
    ];
    for (const value of forged) {
      const res = await cookieRefresh(w, { refresh: value, csrf: jar.csrf }, jar.csrf);
      await assertProblem(res, 401, "token_invalid");
    }
    // None of it touched the real session.
    assertEquals((await cookieRefresh(w, jar, jar.csrf)).status, 200);
  });
});

Deno.test({
  // Regression: refresh() once checked the rotated CSRF hash before reuse detection, so a
  // replayed cookie pair got 403 csrf_failed and the copier kept the session.
  name:
    "a stale cookie pair replayed after rotation revokes the session (reuse detection masked by the CSRF check)",
  async fn() {
    await using w = await openWorld();
    const { jar } = await cookieLogin(w);
    // A thief with a copy of the cookie jar refreshes first…
    const stolen = await cookieRefresh(w, jar, jar.csrf);
    assertEquals(stolen.status, 200);
    const cookies = setCookies(stolen);
    const thief = {
      refresh: cookies.get(REFRESH_COOKIE)!.value,
      csrf: cookies.get(CSRF_COOKIE)!.value,
    };
    // …then the victim's browser sends the pair it still holds, header read from its cookie.
    await assertProblem(await cookieRefresh(w, jar, jar.csrf), 401, "token_revoked");
    // RFC 9700 §4.14.2: the whole session ends, the thief's copy included.
    await assertProblem(await cookieRefresh(w, thief, thief.csrf), 401, "token_revoked");
    assertEquals((await auditEvents(w.kv, "auth.refresh_reuse_detected")).length, 1);
  },
});

Deno.test("POST /auth/refresh refuses injection payloads", async (t) => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  await t.step("junk strings are 401 token_invalid", async () => {
    for (
      const junk of [
        "' OR '1'='1' --",
        '"; DROP TABLE sessions; --',
        '{"$ne":null}',
        "[$gt]=",
        "../../../../etc/passwd",
        "eyJhbGciOiJub25lIn0.eyJ0eXAiOiJyZWZyZXNoIn0.",
        "\u0000\u0000",
        "a".repeat(4096),
      ]
    ) {
      const res = await refresh(w, junk);
      await assertProblem(res, 401, "token_invalid");
    }
  });
  await t.step("non-string and oversized tokens are 422 validation_failed", async () => {
    for (
      const value of [{ $ne: null }, { $gt: "" }, ["a"], 1, true, null, "a".repeat(4097)]
    ) {
      const res = await w.app.request("/auth/refresh", jsonInit("POST", { refresh_token: value }));
      assertEquals(res.status, 422, JSON.stringify(value).slice(0, 40));
      assertEquals((await json(res)).code, "validation_failed");
    }
  });
  await t.step("extra operator fields are 422", async () => {
    const res = await w.app.request(
      "/auth/refresh",
      jsonInit("POST", { refresh_token: s.refresh, $where: "1" }),
    );
    assertEquals(res.status, 422);
  });
  await t.step("the real session survived every attempt", async () => {
    await refreshOk(w, s.refresh);
  });
});
