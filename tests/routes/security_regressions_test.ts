/**
 * Regression tests for findings of the security review (one test per finding).
 */
import { createServices } from "../../services/container.ts";
import { assert, assertEquals } from "../_assert.ts";
import { png } from "../_files.ts";
import { bearer, json, jsonInit, openWorld, peer, promote, signUp } from "../_helpers.ts";

function claims(token: string): Record<string, unknown> {
  return JSON.parse(
    new TextDecoder().decode(
      Uint8Array.fromBase64(token.split(".")[1]!, { alphabet: "base64url" }),
    ),
  );
}

Deno.test("an expired password blocks API keys too, judged at use time", async () => {
  using w = await openWorld({ PASSWORD_MAX_AGE_DAYS: "1" });
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

Deno.test("a token issued just before the password expires is refused once it has", async () => {
  using w = await openWorld({ PASSWORD_MAX_AGE_DAYS: "1", ACCESS_TOKEN_EXPIRE_MINUTES: "30" });
  const s = await signUp(w.app);
  w.clock.advance(86_400_000 - 60_000);
  const login = await w.app.request(
    "/auth/login",
    jsonInit("POST", { email: s.user.email, password: s.user.password }),
  );
  const token = String((await json(login)).access_token);
  assertEquals((await w.app.request("/users/me", { headers: bearer(token) })).status, 200);
  w.clock.advance(120_000);
  const res = await w.app.request("/users/me", { headers: bearer(token) });
  assertEquals((await json(res)).code, "password_expired");
});

Deno.test("asking only for scopes one cannot have yields no scope, never all", async () => {
  using w = await openWorld();
  const s = await signUp(w.app);
  const res = await w.app.request("/auth/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      username: s.user.email,
      password: s.user.password,
      scope: "openid email",
    }),
  });
  const pair = await json(res);
  assertEquals(claims(String(pair.access_token)).scope, "");
  const refreshed = await w.app.request(
    "/auth/refresh",
    jsonInit("POST", { refresh_token: pair.refresh_token }),
  );
  assertEquals(
    claims(String((await json(refreshed)).access_token)).scope,
    "",
    "refresh keeps it narrow",
  );
});

Deno.test("a session from a login that raced a password change dies with the old password", async () => {
  using w = await openWorld();
  const s = await signUp(w.app);
  const services = createServices(w.deps);
  // As if a login checked the old password, then a change committed before the session did:
  // the change's revocation missed the session, so the password version must catch it.
  w.clock.advance(1000);
  await services.users.updateUser(
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

Deno.test("IPv6 clients are rate limited per /64, not per address", async () => {
  using w = await openWorld({ RATE_LIMIT_LOGIN: "5/minute" });
  const statuses: number[] = [];
  for (let i = 1; i <= 7; i++) {
    const res = await w.app.request(
      "/auth/login",
      jsonInit("POST", { email: `v6-${i}@example.com`, password: "Wrong-Pass-99!" }),
      peer(`2001:db8:1:2::${i.toString(16)}`),
    );
    statuses.push(res.status);
  }
  assertEquals(statuses.slice(5), [429, 429]);
});

Deno.test("a JSON suffix type Hono would not parse is refused, not read as {}", async () => {
  using w = await openWorld();
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

Deno.test("WWW-Authenticate names the error only when a token was presented", async () => {
  using w = await openWorld();
  const none = await w.app.request("/users/me");
  assertEquals(none.headers.get("www-authenticate"), "Bearer");
  const bad = await w.app.request("/users/me", { headers: bearer("a.b.c") });
  assertEquals(bad.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
});

Deno.test("an admin's narrowly scoped key has no admin reach over other users' uploads", async () => {
  using w = await openWorld();
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
