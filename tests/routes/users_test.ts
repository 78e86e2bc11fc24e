import { signUp } from "../_helpers/accounts.ts";
import { assert, assertEquals, assertProblem } from "../_helpers/assert.ts";
import { bearer, json, jsonInit } from "../_helpers/http.ts";
import { auditEvents, openWorld } from "../_helpers/world.ts";
import { XSS_VECTORS } from "../_helpers/xss.ts";

function patchMe(token: string, body: unknown, headers: Record<string, string> = bearer(token)) {
  return ["/users/me", jsonInit("PATCH", body, headers)] as const;
}

Deno.test("PATCH /users/me updates the caller's profile", async (t) => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  await t.step("display name, bio and website are stored and returned", async () => {
    const res = await w.app.request(...patchMe(s.access, {
      display_name: "  Ada Lovelace  ",
      bio: `<p>Hi <b>there</b> <a href="https://ada.example">site</a></p>`,
      website: "https://ada.example/about",
    }));
    assertEquals(res.status, 200);
    const body = await json(res);
    assertEquals(body.display_name, "Ada Lovelace");
    assertEquals(
      body.bio,
      `<p>Hi <b>there</b> <a href="https://ada.example" rel="noopener noreferrer nofollow">site</a></p>`,
    );
    assertEquals(body.website, "https://ada.example/about");
    const me = await json(await w.app.request("/users/me", { headers: bearer(s.access) }));
    assertEquals(me.display_name, "Ada Lovelace");
    assertEquals((await auditEvents(w.kv, "profile.updated")).length, 1);
  });
  await t.step("null clears bio and website", async () => {
    const res = await w.app.request(...patchMe(s.access, { bio: null, website: null }));
    const body = await json(res);
    assertEquals([body.bio, body.website], [null, null]);
  });
});

Deno.test("PATCH /users/me refuses mass assignment: other fields are 422", async (t) => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  for (
    const extra of [
      `"role":"admin"`,
      `"email":"other@example.com"`,
      `"id":"AAAAAAAAAAAAAAAAAAAAAA"`,
      `"disabled":false`,
      `"password_hash":"x"`,
      `"created_at":"2020-01-01T00:00:00Z"`,
      `"__proto__":{"role":"admin"}`,
      `"constructor":{"prototype":{"role":"admin"}}`,
      `"Role":"admin"`,
    ]
  ) {
    await t.step(extra, async () => {
      const res = await w.app.request("/users/me", {
        method: "PATCH",
        headers: { ...bearer(s.access), "content-type": "application/json" },
        body: `{"display_name":"X",${extra}}`,
      });
      await assertProblem(res, 422, "validation_failed");
      const user = await w.services.users.getUser(s.id);
      assertEquals(user?.role, "user");
      assertEquals(user?.email, s.user.email);
      assertEquals(user?.display_name, s.user.display_name);
    });
  }
  await t.step("an empty body changes nothing and is 422", async () => {
    await assertProblem(await w.app.request(...patchMe(s.access, {})), 422, "validation_failed");
  });
});

Deno.test("PATCH /users/me validates website and display name", async (t) => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  for (
    const website of [
      "http://plain.example",
      "javascript:alert(1)",
      "data:text/html,x",
      "//evil.example",
      "/relative",
      "ftp://files.example",
      "https://user:pass@evil.example",
      "not a url",
      "https://" + "a".repeat(2100) + ".example",
    ]
  ) {
    await t.step(`website ${website.slice(0, 40)} is 422`, async () => {
      await assertProblem(
        await w.app.request(...patchMe(s.access, { website })),
        422,
        "validation_failed",
      );
    });
  }
  for (
    const display_name of ["", "   ", "a".repeat(101), "bell\u0007", "new\nline", "\u202Egnp.exe"]
  ) {
    await t.step(`display_name ${JSON.stringify(display_name).slice(0, 30)} is 422`, async () => {
      await assertProblem(
        await w.app.request(...patchMe(s.access, { display_name })),
        422,
        "validation_failed",
      );
    });
  }
});

Deno.test("PATCH /users/me sanitizes every XSS vector in bio", async () => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  for (const vector of XSS_VECTORS) {
    const res = await w.app.request(...patchMe(s.access, { bio: vector }));
    assertEquals(res.status, 200, vector);
    const bio = String((await json(res)).bio);
    for (
      const bad of [
        /<script/i,
        /<img/i,
        /<svg/i,
        /<iframe/i,
        /\son\w+=/i,
        /javascript:/i,
        /style=/i,
      ]
    ) {
      assert(!bad.test(bio), `${bad} kept in ${bio} from ${vector}`);
    }
  }
});

Deno.test("PATCH /users/me needs profile:write", async (t) => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  await t.step("no credential is 401", async () => {
    await assertProblem(
      await w.app.request("/users/me", jsonInit("PATCH", { display_name: "x" })),
      401,
      "token_invalid",
    );
  });
  await t.step("an API key without profile:write is 403 insufficient_scope", async () => {
    const created = await w.app.request(
      "/api-keys",
      jsonInit("POST", { name: "read-only", scopes: ["profile:read"] }, bearer(s.access)),
    );
    assertEquals(created.status, 201);
    const key = String((await json(created)).key);
    const res = await w.app.request(
      "/users/me",
      jsonInit("PATCH", { display_name: "Hacked" }, { "x-api-key": key }),
    );
    await assertProblem(res, 403, "insufficient_scope");
    assertEquals((await w.services.users.getUser(s.id))?.display_name, s.user.display_name);
    assert((await auditEvents(w.kv, "authz.denied")).length >= 1);
  });
});
