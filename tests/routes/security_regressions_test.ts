/**
 * Regression tests for findings of the security review (one test per finding).
 */
import { login, promote, signUp, tokenPair } from "../_helpers/accounts.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { png } from "../_helpers/files.ts";
import { bearer, json, jsonInit } from "../_helpers/http.ts";
import { decodeJwt } from "../_helpers/jwt.ts";
import { openWorld } from "../_helpers/world.ts";

Deno.test("an API key of a user whose password has expired is refused (expired password bypass)", async () => {
  await using w = await openWorld({ env: { PASSWORD_MAX_AGE_DAYS: "1" } });
  const s = await signUp(w.app);
  const created = await w.app.request(
    "/api-keys",
    jsonInit("POST", { name: "k", scopes: ["profile:read"] }, bearer(s.access)),
  );
  const key = String((await json(created)).key);
  w.clock.advance(86_400_000);
  const res = await w.app.request("/users/me", { headers: { "x-api-key": key } });
  assertEquals(res.status, 403);
  assertEquals((await json(res)).code, "password_expired");
});

Deno.test("an access token issued just before the password expires is refused once it has (password expiry judged only at issue)", async () => {
  await using w = await openWorld({
    env: { PASSWORD_MAX_AGE_DAYS: "1", ACCESS_TOKEN_EXPIRE_MINUTES: "30" },
  });
  const s = await signUp(w.app);
  w.clock.advance(86_400_000 - 60_000);
  const token = (await tokenPair(await login(w.app, s.user))).access;
  assertEquals((await w.app.request("/users/me", { headers: bearer(token) })).status, 200);
  w.clock.advance(120_000);
  const res = await w.app.request("/users/me", { headers: bearer(token) });
  assertEquals((await json(res)).code, "password_expired");
});

Deno.test("a login asking only for scopes it cannot have gets no scope, never all (scope escalation)", async () => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  const pair = await tokenPair(await login(w.app, s.user, { scope: "openid email" }));
  assertEquals(decodeJwt(pair.access).payload.scope, "");
  const refreshed = await tokenPair(
    await w.app.request("/auth/refresh", jsonInit("POST", { refresh_token: pair.refresh })),
  );
  assertEquals(decodeJwt(refreshed.access).payload.scope, "", "refresh keeps it narrow");
});

Deno.test("a session from a login that raced a password change dies with the old password (revocation race)", async () => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  // As if a login checked the old password, then a change committed before the session did:
  // the change's revocation missed the session, so the password version must catch it.
  w.clock.advance(1000);
  await w.services.users.updateUser(
    s.id,
    (u) => ({ ...u, password_changed_at: w.clock.now().toISOString() }),
  );
  const me = await w.app.request("/users/me", { headers: bearer(s.access) });
  assertEquals(me.status, 401);
  assertEquals((await json(me)).code, "token_revoked");
  const refresh = await w.app.request(
    "/auth/refresh",
    jsonInit("POST", { refresh_token: s.refresh }),
  );
  assertEquals(refresh.status, 401);
});

Deno.test("IPv6 clients are rate limited per /64, not per address (rate limit bypass by address rotation)", async () => {
  await using w = await openWorld({ env: { RATE_LIMIT_LOGIN: "5/minute" } });
  const statuses: number[] = [];
  for (let i = 1; i <= 7; i++) {
    const res = await login(
      w.app,
      { email: `v6-${i}@example.com`, password: "Wrong-Pass-99!" },
      { ip: `2001:db8:1:2::${i.toString(16)}` },
    );
    statuses.push(res.status);
  }
  assertEquals(statuses.slice(5), [429, 429]);
});

Deno.test("a JSON suffix type Hono would not parse is refused, not read as {} (validation bypass by media type)", async () => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  const created = await w.app.request(
    "/api-keys",
    jsonInit("POST", { name: "k", scopes: ["profile:read"] }, bearer(s.access)),
  );
  const id = String((await json(created)).id);
  const res = await w.app.request(`/api-keys/${id}/rotate`, {
    method: "POST",
    headers: { ...bearer(s.access), "content-type": "application/a+b+json" },
    body: JSON.stringify({ grace_hours: 0, bogus: true }),
  });
  assertEquals(res.status, 415);
});

Deno.test("WWW-Authenticate names the error only when a token was presented (RFC 6750 error hint to anonymous callers)", async () => {
  await using w = await openWorld();
  const none = await w.app.request("/users/me");
  assertEquals(none.headers.get("www-authenticate"), "Bearer");
  const bad = await w.app.request("/users/me", { headers: bearer("a.b.c") });
  assertEquals(bad.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
});

Deno.test("an admin's narrowly scoped key has no admin reach over other users' uploads (API key scope bypass)", async () => {
  await using w = await openWorld();
  const victim = await signUp(w.app);
  const form = new FormData();
  form.append("file", new File([png() as BlobPart], "a.png", { type: "image/png" }));
  const up = await w.app.request("/uploads", {
    method: "POST",
    body: form,
    headers: bearer(victim.access),
  });
  assertEquals(up.status, 201);
  const uploadId = String((await json(up)).id);
  const adminToken = await promote(w, await signUp(w.app), "admin");
  assertEquals(
    (await w.app.request(`/uploads/${uploadId}`, { headers: bearer(adminToken) })).status,
    200,
  );
  const keyRes = await w.app.request(
    "/api-keys",
    jsonInit("POST", { name: "ro", scopes: ["uploads:read"] }, bearer(adminToken)),
  );
  const key = String((await json(keyRes)).key);
  const res = await w.app.request(`/uploads/${uploadId}/content`, {
    headers: { "x-api-key": key },
  });
  assertEquals(res.status, 404);
  assert(res.headers.get("content-disposition") === null);
});
