import { login, promote, randomUser, signUp } from "../_helpers/accounts.ts";
import { assert, assertEquals, assertProblem } from "../_helpers/assert.ts";
import { bearer, json, jsonInit, type Requester } from "../_helpers/http.ts";
import { auditEvents, openWorld, type World } from "../_helpers/world.ts";

type Page = { items: Record<string, unknown>[]; next_cursor: string | null };

async function get(app: Requester, token: string, path: string): Promise<Page> {
  const res = await app.request(path, { headers: bearer(token) });
  assertEquals(res.status, 200, await res.clone().text());
  return await res.json();
}

async function all(app: Requester, token: string, path: string): Promise<Page["items"]> {
  const items: Page["items"] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 500; i++) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await get(app, token, cursor === null ? path : `${path}${sep}cursor=${cursor}`);
    items.push(...page.items);
    cursor = page.next_cursor;
    if (cursor === null) break;
  }
  return items;
}

async function adminWorld(w: World) {
  const admin = await signUp(w.app);
  return { admin, token: await promote(w, admin, "admin") };
}

Deno.test("GET /admin/users lists and searches by email or display-name prefix", async (t) => {
  await using w = await openWorld();
  const { admin, token } = await adminWorld(w);
  const alice = await signUp(
    w.app,
    randomUser({ email: "alice@corp.example", display_name: "Alice Smith" }),
  );
  await signUp(w.app, randomUser({ email: "alfred@corp.example", display_name: "Zed" }));
  await signUp(w.app, randomUser({ email: "zoe@corp.example", display_name: "ALPHA Ｔｅａｍ" }));
  // Matches by email and by name: must appear once.
  await signUp(w.app, randomUser({ email: "alma@corp.example", display_name: "alma" }));
  for (let i = 0; i < 25; i++) {
    await signUp(
      w.app,
      randomUser({
        email: `bulk${String(i).padStart(2, "0")}@x.example`,
        display_name: `Bulk ${i}`,
      }),
    );
  }
  await t.step(
    "q matches the start of the email or of the display name, case-insensitively",
    async () => {
      const emails = (await all(w.app, token, "/admin/users?q=AL&limit=2")).map((u) => u.email)
        .sort();
      assertEquals(emails, [
        "alfred@corp.example",
        "alice@corp.example",
        "alma@corp.example",
        "zoe@corp.example",
      ]);
      const byName = (await all(w.app, token, "/admin/users?q=alice%20sm")).map((u) => u.id);
      assertEquals(byName, [alice.id]);
      // NFKC: full-width letters match their plain form.
      assertEquals((await all(w.app, token, "/admin/users?q=alpha%20team")).map((u) => u.email), [
        "zoe@corp.example",
      ]);
      assertEquals(await all(w.app, token, "/admin/users?q=orp.example"), []);
    },
  );
  await t.step("without q: every account once, across pages", async () => {
    const items = await all(w.app, token, "/admin/users?limit=7");
    assertEquals(items.length, 30);
    assertEquals(new Set(items.map((u) => u.id)).size, 30);
    for (const u of items) assert(!("password_hash" in u) && !("password_history" in u));
  });
  await t.step("role filters, alone and with q", async () => {
    assertEquals((await all(w.app, token, "/admin/users?role=admin")).map((u) => u.id), [admin.id]);
    assertEquals((await all(w.app, token, "/admin/users?role=admin&q=bulk")).length, 0);
    assertEquals((await all(w.app, token, "/admin/users?role=user&q=bulk")).length, 25);
  });
  await t.step("GET /admin/users/{id}, unknown id 404", async () => {
    const res = await w.app.request(`/admin/users/${alice.id}`, { headers: bearer(token) });
    const body = await json(res);
    assertEquals([body.email, body.disabled, body.role], ["alice@corp.example", false, "user"]);
    await assertProblem(
      await w.app.request("/admin/users/AAAAAAAAAAAAAAAAAAAAAA", { headers: bearer(token) }),
      404,
      "not_found",
    );
  });
  await t.step("bad queries are 422", async () => {
    for (const q of ["role=root", "limit=0", "limit=101", "cursor=%%%", "cursor=e30", "x=1"]) {
      await assertProblem(
        await w.app.request(`/admin/users?${q}`, { headers: bearer(token) }),
        422,
        "validation_failed",
      );
    }
  });
});

Deno.test("/admin rights follow the permission table", async (t) => {
  await using w = await openWorld();
  const user = await signUp(w.app);
  const mod = await signUp(w.app);
  const modToken = await promote(w, mod, "moderator");
  await t.step("a user gets 403 forbidden everywhere, audited", async () => {
    for (const path of ["/admin/users", `/admin/users/${mod.id}`, "/admin/audit"]) {
      await assertProblem(
        await w.app.request(path, { headers: bearer(user.access) }),
        403,
        "forbidden",
      );
    }
    // Repeated refusals of one caller within a minute are one record (audit growth).
    const [denied] = await auditEvents(w.kv, "authz.denied");
    assertEquals(denied?.user_id, user.id);
  });
  await t.step(
    "a moderator reads accounts (users:read) but cannot change them or read audit",
    async () => {
      assertEquals(
        (await w.app.request("/admin/users", { headers: bearer(modToken) })).status,
        200,
      );
      await assertProblem(
        await w.app.request(
          `/admin/users/${user.id}`,
          jsonInit("PATCH", { role: "admin" }, bearer(modToken)),
        ),
        403,
        "forbidden",
      );
      await assertProblem(
        await w.app.request(`/admin/users/${user.id}/unlock`, {
          method: "POST",
          headers: bearer(modToken),
        }),
        403,
        "forbidden",
      );
      await assertProblem(
        await w.app.request("/admin/audit", { headers: bearer(modToken) }),
        403,
        "forbidden",
      );
      assertEquals((await w.services.users.getUser(user.id))?.role, "user");
    },
  );
  await t.step(
    "an admin's token scoped without users:manage is 403 insufficient_scope",
    async () => {
      const admin = await signUp(w.app);
      await promote(w, admin, "admin");
      const narrow =
        (await json(await login(w.app, admin.user, { scope: "profile:read users:read" })))
          .access_token as string;
      await assertProblem(
        await w.app.request(
          `/admin/users/${user.id}`,
          jsonInit("PATCH", { disabled: true }, bearer(narrow)),
        ),
        403,
        "insufficient_scope",
      );
    },
  );
});

Deno.test("PATCH /admin/users/{id} changes role or disabled and revokes access at once", async (t) => {
  await using w = await openWorld();
  const { admin, token } = await adminWorld(w);
  const target = await signUp(w.app);
  const key = String(
    (await json(
      await w.app.request(
        "/api-keys",
        jsonInit("POST", { name: "k", scopes: ["profile:read"] }, bearer(target.access)),
      ),
    )).key,
  );
  await t.step("a role change kills the old access token, refresh token and API keys", async () => {
    const res = await w.app.request(
      `/admin/users/${target.id}`,
      jsonInit("PATCH", { role: "moderator" }, bearer(token)),
    );
    assertEquals(res.status, 200);
    assertEquals((await json(res)).role, "moderator");
    await assertProblem(
      await w.app.request("/users/me", { headers: bearer(target.access) }),
      401,
      "token_revoked",
    );
    const refreshed = await w.app.request(
      "/auth/refresh",
      jsonInit("POST", { refresh_token: target.refresh }),
    );
    assertEquals(refreshed.status, 401);
    assertEquals((await w.app.request("/users/me", { headers: { "x-api-key": key } })).status, 401);
    assertEquals(await w.services.sessions.listForUser(target.id), []);
    assertEquals(await w.services.apiKeys.list(target.id), []);
  });
  await t.step("the change is audited with actor, target and change", async () => {
    const [event] = await auditEvents(w.kv, "admin.user_updated");
    assertEquals(event?.user_id, admin.id);
    assertEquals(event?.details.target_user_id, target.id);
    assertEquals(event?.details.change, { role: { from: "user", to: "moderator" } });
    const [revoked] = await auditEvents(w.kv, "credentials.revoked_all");
    assertEquals(revoked?.details.reason, "role_changed");
    assertEquals(revoked?.details.api_keys, 1);
    assertEquals(revoked?.user_id, admin.id);
    assertEquals(revoked?.details.target_user_id, target.id);
  });
  await t.step("the new role applies at the next login", async () => {
    const again = await json(await login(w.app, target.user));
    const me = await w.app.request("/admin/users", { headers: bearer(String(again.access_token)) });
    assertEquals(me.status, 200);
  });
  await t.step("disable refuses logins and ends sessions; enable restores the login", async () => {
    const fresh = await json(await login(w.app, target.user));
    const res = await w.app.request(
      `/admin/users/${target.id}`,
      jsonInit("PATCH", { disabled: true }, bearer(token)),
    );
    assertEquals((await json(res)).disabled, true);
    await assertProblem(
      await w.app.request("/users/me", { headers: bearer(String(fresh.access_token)) }),
      401,
      "token_revoked",
    );
    assertEquals((await login(w.app, target.user)).status, 401);
    w.clock.advance(60_000); // past the progressive delay that refusal started
    await w.app.request(
      `/admin/users/${target.id}`,
      jsonInit("PATCH", { disabled: false }, bearer(token)),
    );
    assertEquals((await login(w.app, target.user)).status, 200);
  });
  await t.step("only role and disabled may be sent", async () => {
    for (
      const body of [{ email: "x@example.com" }, { role: "root" }, {}, { disabled: "yes" }, {
        password_hash: "x",
      }]
    ) {
      await assertProblem(
        await w.app.request(`/admin/users/${target.id}`, jsonInit("PATCH", body, bearer(token))),
        422,
        "validation_failed",
      );
    }
  });
});

Deno.test("the last active admin can be neither demoted nor disabled", async (t) => {
  await using w = await openWorld();
  const { admin, token } = await adminWorld(w);
  await t.step("alone: 409 conflict, nothing changes", async () => {
    for (
      const body of [{ role: "user" }, { disabled: true }, { role: "moderator", disabled: true }]
    ) {
      await assertProblem(
        await w.app.request(`/admin/users/${admin.id}`, jsonInit("PATCH", body, bearer(token))),
        409,
        "conflict",
      );
    }
    const stored = await w.services.users.getUser(admin.id);
    assertEquals([stored?.role, stored?.disabled], ["admin", false]);
  });
  await t.step("a disabled admin does not count as active", async () => {
    const second = await signUp(w.app);
    await promote(w, second, "admin");
    await w.services.users.updateUser(second.id, (u) => ({ ...u, disabled: true }));
    await assertProblem(
      await w.app.request(
        `/admin/users/${admin.id}`,
        jsonInit("PATCH", { role: "user" }, bearer(token)),
      ),
      409,
      "conflict",
    );
  });
  await t.step(
    "with another active admin, one may demote the other, then not the last",
    async () => {
      const second = await signUp(w.app);
      const secondToken = await promote(w, second, "admin");
      const res = await w.app.request(
        `/admin/users/${admin.id}`,
        jsonInit("PATCH", { role: "user" }, bearer(secondToken)),
      );
      assertEquals(res.status, 200);
      await assertProblem(
        await w.app.request(
          `/admin/users/${second.id}`,
          jsonInit("PATCH", { disabled: true }, bearer(secondToken)),
        ),
        409,
        "conflict",
      );
    },
  );
  await t.step("two admins demoting each other at once: one wins", async () => {
    const a = await signUp(w.app);
    const b = await signUp(w.app);
    await promote(w, a, "admin");
    await promote(w, b, "admin");
    // Three active admins now (second, a, b): demote a and b and second concurrently.
    const ids = (await w.services.accounts.list(
      { userId: "x", role: "admin", scopes: new Set(["users:read"]) },
      { role: "admin", limit: 100 },
    )).items.filter((u) => !u.disabled).map((u) => u.id);
    const results = await Promise.allSettled(
      ids.map((id) => w.services.accounts.update({ kind: "cli" }, id, { role: "user" })),
    );
    assertEquals(results.filter((r) => r.status === "fulfilled").length, ids.length - 1);
    const left = (await w.services.accounts.list(
      { userId: "x", role: "admin", scopes: new Set(["users:read"]) },
      { role: "admin", limit: 100 },
    )).items.filter((u) => !u.disabled);
    assertEquals(left.length, 1);
  });
});

Deno.test("POST /admin/users/{id}/unlock clears a lockout", async () => {
  await using w = await openWorld();
  const { token } = await adminWorld(w);
  const target = await signUp(w.app);
  const wrong = { email: target.user.email, password: "Wrong-Pass-99!" };
  for (let i = 0; i < 5; i++) {
    await login(w.app, wrong);
    w.clock.advance(60_000);
  }
  assertEquals((await login(w.app, target.user)).status, 423);
  const res = await w.app.request(`/admin/users/${target.id}/unlock`, {
    method: "POST",
    headers: bearer(token),
  });
  assertEquals(res.status, 204);
  assertEquals((await login(w.app, target.user)).status, 200);
  assertEquals(
    (await auditEvents(w.kv, "admin.user_unlocked"))[0]?.details.target_user_id,
    target.id,
  );
});

Deno.test("GET /admin/audit filters by type, user and time, newest first, paginated", async (t) => {
  await using w = await openWorld();
  const { admin, token } = await adminWorld(w);
  w.clock.advance(1000);
  const start = w.clock.now();
  const users: { id: string }[] = [];
  for (let i = 0; i < 4; i++) {
    w.clock.advance(60_000);
    users.push(await signUp(w.app));
  }
  const middle = w.clock.now();
  w.clock.advance(60_000);
  await w.app.request(
    `/admin/users/${users[0]!.id}`,
    jsonInit("PATCH", { role: "moderator" }, bearer(token)),
  );
  await t.step("by type, newest first, every page size", async () => {
    const items = await all(w.app, token, "/admin/audit?type=user.registered&limit=2");
    assertEquals(items.length, 5);
    const times = items.map((e) => String(e.at));
    assertEquals(times, [...times].sort().reverse());
    assertEquals(new Set(items.map((e) => e.id)).size, 5);
    for (const e of items) {
      assertEquals(e.type, "user.registered");
      assertEquals(
        Object.keys(e).sort().filter((k) => !["ip", "request_id", "user_id"].includes(k)),
        ["at", "chain", "details", "hash", "id", "outcome", "prev", "seq", "type"],
      );
    }
  });
  await t.step("by user: events by them and about them", async () => {
    const types = (await all(w.app, token, `/admin/audit?user_id=${users[0]!.id}`)).map((e) =>
      e.type
    );
    assert(types.includes("user.registered"));
    assert(types.includes("admin.user_updated"), types.join());
    assert(types.includes("credentials.revoked_all"));
    const adminTypes = await all(
      w.app,
      token,
      `/admin/audit?user_id=${admin.id}&type=admin.user_updated`,
    );
    assertEquals(adminTypes.length, 1);
  });
  await t.step("by time window", async () => {
    const window = await all(
      w.app,
      token,
      `/admin/audit?type=user.registered&since=${start.toISOString()}&until=${middle.toISOString()}`,
    );
    assertEquals(window.length, 4);
    const none = await all(
      w.app,
      token,
      `/admin/audit?since=${new Date(middle.getTime() + 3_600_000).toISOString()}`,
    );
    assertEquals(none, []);
  });
  await t.step("bad filters are 422", async () => {
    for (
      const q of [
        "type=nope",
        "since=yesterday",
        `since=${middle.toISOString()}&until=${start.toISOString()}`,
        "limit=500",
      ]
    ) {
      await assertProblem(
        await w.app.request(`/admin/audit?${q}`, { headers: bearer(token) }),
        422,
        "validation_failed",
      );
    }
  });
});
