import * as oauth from "oauth4webapi";
import { assert, assertEquals, assertProblem } from "../../_helpers/assert.ts";
import { GOOD_PASSWORD, promote, signUp } from "../../_helpers/accounts.ts";
import { bearer, json, jsonInit } from "../../_helpers/http.ts";
import {
  admin,
  codeFlow,
  discover,
  oauthOptions,
  REDIRECT_URI,
  registerClient,
} from "../../_helpers/oauth2.ts";
import { auditEvents, openWorld } from "../../_helpers/world.ts";

const BODY = {
  name: "App",
  type: "confidential",
  redirect_uris: [REDIRECT_URI],
  grant_types: ["authorization_code", "client_credentials"],
  scopes: ["profile:read"],
};

Deno.test("POST /admin/oauth2/clients registers a client; the secret is shown once and stored hashed", async () => {
  await using w = await openWorld();
  const boss = await admin(w);
  const res = await w.app.request(
    "/admin/oauth2/clients",
    jsonInit("POST", BODY, bearer(boss.token)),
  );
  assertEquals(res.status, 201);
  const body = await json(res);
  assertEquals(res.headers.get("location"), `/admin/oauth2/clients/${body.client_id}`);
  const secret = String(body.client_secret);
  assert(secret.length >= 43);
  // Nothing in the store holds the secret itself.
  for await (const e of w.kv.list({ prefix: [] })) {
    assert(!JSON.stringify(e.value).includes(secret), `secret stored in ${String(e.key[0])}`);
  }
  const list = await w.app.request("/admin/oauth2/clients", { headers: bearer(boss.token) });
  assertEquals(list.status, 200);
  const text = await list.text();
  assert(!text.includes(secret) && !text.includes("secret"), "never lists secrets");
  assertEquals((JSON.parse(text) as unknown[]).length, 1);
  assertEquals((await auditEvents(w.kv, "oauth2.client_created")).length, 1);
  // A public client gets no secret.
  const pub = await json(
    await w.app.request(
      "/admin/oauth2/clients",
      jsonInit(
        "POST",
        { ...BODY, type: "public", grant_types: ["authorization_code"] },
        bearer(boss.token),
      ),
    ),
  );
  assertEquals(pub.client_secret, undefined);
});

Deno.test("POST /admin/oauth2/clients validates redirect URIs, scopes and grant types", async (t) => {
  await using w = await openWorld();
  const boss = await admin(w);
  const bad = async (change: Record<string, unknown>) => {
    const res = await w.app.request(
      "/admin/oauth2/clients",
      jsonInit("POST", { ...BODY, ...change }, bearer(boss.token)),
    );
    return await assertProblem(res, 422, "validation_failed");
  };
  await t.step("redirect URIs: https or loopback http, no fragment, no wildcard", async () => {
    for (
      const uri of [
        "http://example.com/cb",
        "https://*.example.com/cb",
        "https://a.example.com/cb#x",
        "relative/cb",
        "http://localhost:8080/cb",
        "javascript:alert(1)",
        "https://user:pw@a.example.com/",
      ]
    ) {
      await bad({ redirect_uris: [uri] });
    }
    for (
      const uri of ["http://127.0.0.1:7777/cb", "http://[::1]/cb", "https://app.example.com/cb?x=1"]
    ) {
      const res = await w.app.request(
        "/admin/oauth2/clients",
        jsonInit("POST", { ...BODY, redirect_uris: [uri] }, bearer(boss.token)),
      );
      assertEquals(res.status, 201, uri);
    }
  });
  await t.step("unknown scopes, unknown fields, public client_credentials", async () => {
    await bad({ scopes: ["root:everything"] });
    await bad({ extra: true });
    await bad({ type: "public", grant_types: ["client_credentials"] });
    await bad({ grant_types: ["implicit"] });
  });
});

Deno.test("/admin/oauth2/clients: a user (not admin) cannot manage clients", async () => {
  await using w = await openWorld();
  const user = await signUp(w.app);
  const post = await w.app.request(
    "/admin/oauth2/clients",
    jsonInit("POST", BODY, bearer(user.access)),
  );
  await assertProblem(post, 403, "forbidden");
  await assertProblem(
    await w.app.request("/admin/oauth2/clients", { headers: bearer(user.access) }),
    403,
    "forbidden",
  );
  await assertProblem(
    await w.app.request("/admin/oauth2/clients/abcdefgh", {
      method: "DELETE",
      headers: bearer(user.access),
    }),
    403,
    "forbidden",
  );
  await assertProblem(await w.app.request("/admin/oauth2/clients"), 401, "token_invalid");
  const mod = await promote(w, user, "moderator");
  await assertProblem(
    await w.app.request("/admin/oauth2/clients", { headers: bearer(mod) }),
    403,
    "forbidden",
  );
});

Deno.test("DELETE /admin/oauth2/clients/{id} removes the client and revokes everything issued to it", async () => {
  await using w = await openWorld();
  const boss = await admin(w);
  const tc = await registerClient(w, boss.token);
  const user = await signUp(w.app);
  const as = await discover(w.app);
  const opts = oauthOptions(w.app);
  const tokens = await codeFlow(w, as, tc, { email: user.user.email, password: GOOD_PASSWORD });
  const cc = await oauth.processClientCredentialsResponse(
    as,
    tc.client,
    await oauth.clientCredentialsGrantRequest(as, tc.client, tc.auth, {}, opts),
  );
  const del = await w.app.request(`/admin/oauth2/clients/${tc.client.client_id}`, {
    method: "DELETE",
    headers: bearer(boss.token),
  });
  assertEquals(del.status, 204);
  assertEquals(
    (await w.app.request("/users/me", { headers: bearer(tokens.access_token) })).status,
    401,
  );
  assertEquals(await w.services.oauth2.listConsents(user.id), []);
  // The client itself is gone: its credentials no longer authenticate.
  const res = await oauth.introspectionRequest(as, tc.client, tc.auth, cc.access_token, opts);
  assertEquals(res.status, 401);
  const again = await w.app.request(`/admin/oauth2/clients/${tc.client.client_id}`, {
    method: "DELETE",
    headers: bearer(boss.token),
  });
  await assertProblem(again, 404, "not_found");
  assertEquals((await auditEvents(w.kv, "oauth2.client_deleted")).length, 1);
});
