import { login, promote, signUp } from "../../_helpers/accounts.ts";
import { assert, assertEquals, assertProblem } from "../../_helpers/assert.ts";
import { bearer, json, jsonInit, peer } from "../../_helpers/http.ts";
import { auditTypes, openWorld } from "../../_helpers/world.ts";

Deno.test("/admin/blocks lists, adds and lifts blocks (admin only)", async (t) => {
  await using w = await openWorld();
  const admin = await signUp(w.app);
  const access = await promote(w, admin, "admin");
  const auth = bearer(access);
  const target = await signUp(w.app);

  await t.step("non-admins get 401/403", async () => {
    await assertProblem(await w.app.request("/admin/blocks"), 401, "token_invalid");
    await assertProblem(
      await w.app.request("/admin/blocks", { headers: bearer(target.access) }),
      403,
      "forbidden",
    );
  });

  let ipBlockId = "";
  await t.step(
    "POST an IP: 201 with Location; that IP gets 403 ip_blocked before any work",
    async () => {
      const res = await w.app.request(
        "/admin/blocks",
        jsonInit("POST", { ip: "203.0.113.77", minutes: 10, reason: "abuse" }, auth),
      );
      assertEquals(res.status, 201);
      const body = await json(res);
      ipBlockId = String(body.id);
      assertEquals(res.headers.get("location"), `/admin/blocks/${ipBlockId}`);
      assertEquals(body.kind, "ip");
      assertEquals(body.created_by, `admin:${admin.id}`);
      // Even a login with valid credentials is refused, and nothing is audited for it.
      const before = (await auditTypes(w.kv)).length;
      await assertProblem(
        await w.app.request("/auth/login", jsonInit("POST", target.user), peer("203.0.113.77")),
        403,
        "ip_blocked",
      );
      assertEquals((await auditTypes(w.kv)).length, before);
      assertEquals((await w.app.request("/health", {}, peer("203.0.113.78"))).status, 200);
    },
  );

  await t.step("a CIDR covers its range, IPv4-mapped IPv6 included", async () => {
    const res = await w.app.request(
      "/admin/blocks",
      jsonInit("POST", { cidr: "198.51.100.0/24", minutes: 10, reason: "net" }, auth),
    );
    assertEquals(res.status, 201);
    await assertProblem(
      await w.app.request("/health", {}, peer("198.51.100.9")),
      403,
      "ip_blocked",
    );
    await assertProblem(
      await w.app.request("/health", {}, peer("::ffff:198.51.100.10")),
      403,
      "ip_blocked",
    );
  });

  await t.step("a user block: 423 account_locked for its tokens and its logins", async () => {
    const res = await w.app.request(
      "/admin/blocks",
      jsonInit("POST", { user_id: target.id, minutes: 30, reason: "compromised" }, auth),
    );
    assertEquals(res.status, 201);
    const locked = await w.app.request("/users/me", { headers: bearer(target.access) });
    await assertProblem(locked, 423, "account_locked");
    assertEquals(locked.headers.get("retry-after"), "1800");
    await assertProblem(await login(w.app, target.user), 423, "account_locked");
  });

  await t.step("bad input is 422", async () => {
    for (
      const body of [
        { ip: "203.0.113.1", cidr: "10.0.0.0/8", minutes: 5, reason: "two" },
        { minutes: 5, reason: "none" },
        { ip: "not-an-ip", minutes: 5, reason: "x" },
        { ip: "10.0.0.0/8", minutes: 5, reason: "cidr as ip" },
        { ip: "203.0.113.1", minutes: 0, reason: "x" },
        { ip: "203.0.113.1", minutes: 5, reason: "x", extra: 1 },
        { user_id: "AAAAAAAAAAAAAAAAAAAAAA", minutes: 5, reason: "unknown user" },
      ]
    ) {
      await assertProblem(
        await w.app.request("/admin/blocks", jsonInit("POST", body, auth)),
        422,
        "validation_failed",
      );
    }
  });

  await t.step("GET lists active blocks; DELETE lifts one (204), then 404", async () => {
    const list = await (await w.app.request("/admin/blocks", { headers: auth })).json() as Array<
      Record<string, unknown>
    >;
    assertEquals(list.length, 3);
    const del = await w.app.request(`/admin/blocks/${ipBlockId}`, {
      method: "DELETE",
      headers: auth,
    });
    assertEquals(del.status, 204);
    assertEquals((await w.app.request("/health", {}, peer("203.0.113.77"))).status, 200);
    await assertProblem(
      await w.app.request(`/admin/blocks/${ipBlockId}`, { method: "DELETE", headers: auth }),
      404,
      "not_found",
    );
  });

  await t.step("lifting a user block lets the account back in", async () => {
    const list = await (await w.app.request("/admin/blocks", { headers: auth })).json() as Array<
      Record<string, unknown>
    >;
    const userBlock = list.find((b) => b.kind === "user")!;
    await w.app.request(`/admin/blocks/${userBlock.id}`, { method: "DELETE", headers: auth });
    assertEquals(
      (await w.app.request("/users/me", { headers: bearer(target.access) })).status,
      200,
    );
    assertEquals((await login(w.app, target.user)).status, 200);
  });

  await t.step("blocks expire by themselves", async () => {
    w.clock.advance(11 * 60_000);
    assertEquals((await w.app.request("/health", {}, peer("198.51.100.9"))).status, 200);
  });

  await t.step("the routes are in /openapi.json", async () => {
    const doc = await json(await w.app.request("/openapi.json"));
    const paths = Object.keys(doc.paths as Record<string, unknown>);
    for (const path of ["/admin/blocks", "/admin/blocks/{id}", "/metrics"]) {
      assert(paths.includes(path), path);
    }
  });

  await t.step("every block and lift is audited", async () => {
    const types = await auditTypes(w.kv);
    assertEquals(types.filter((t) => t === "ops.block_added").length, 3);
    assert(types.includes("ops.block_removed"));
  });
});
