import { promote, signUp } from "../_helpers/accounts.ts";
import { assert, assertEquals, assertMatch } from "../_helpers/assert.ts";
import { bearer, json, jsonInit, peer } from "../_helpers/http.ts";
import { auditTypes, openWorld } from "../_helpers/world.ts";

/** A world with one signed-up key owner. */
async function world() {
  const w = await openWorld();
  try {
    return Object.assign(w, { owner: await signUp(w.app) });
  } catch (error) {
    await w[Symbol.asyncDispose]();
    throw error;
  }
}

type World = Awaited<ReturnType<typeof world>>;

async function createKey(w: World, body: Record<string, unknown> = {}, token = w.owner.access) {
  return await w.app.request(
    "/api-keys",
    jsonInit("POST", { name: "ci", scopes: ["profile:read"], ...body }, bearer(token)),
  );
}

async function newKey(
  w: World,
  body: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const res = await createKey(w, body);
  assertEquals(res.status, 201, await res.clone().text());
  return await json(res);
}

function withKey(key: unknown, ip = "203.0.113.9") {
  return [{ headers: { "x-api-key": String(key) } }, peer(ip)] as const;
}

Deno.test("POST /api-keys creates a key shown once", async (t) => {
  await using w = await world();
  const res = await createKey(w, { expires_in_days: 30, allowed_ips: ["10.0.0.0/8"] });
  let created: Record<string, unknown> = {};
  await t.step("201 with the documented shape", async () => {
    assertEquals(res.status, 201);
    assertEquals(res.headers.get("cache-control"), "no-store");
    const body = await json(res);
    assertEquals(
      Object.keys(body).sort(),
      ["allowed_ips", "created_at", "expires_at", "id", "key", "name", "prefix", "scopes"],
    );
    assertMatch(String(body.key), /^bwk_[A-Za-z0-9_-]{43}$/);
    assert(String(body.key).startsWith(String(body.prefix)));
    assertEquals(body.scopes, ["profile:read"]);
    assertEquals(body.allowed_ips, ["10.0.0.0/8"]);
    assertEquals(body.expires_at, "2026-01-31T00:00:00.000Z");
    created = body;
  });
  await t.step("the key itself is stored nowhere, only its hash", async () => {
    const body = created;
    {
      for await (const entry of w.kv.list({ prefix: [] })) {
        assert(
          !JSON.stringify(entry.value, (_k, v) => typeof v === "bigint" ? String(v) : v).includes(
            String(body.key),
          ),
        );
        assert(!JSON.stringify(entry.key).includes(String(body.key)));
      }
    }
  });
  await t.step("the list never shows the key or its hash", async () => {
    {
      const list = await w.app.request("/api-keys", { headers: bearer(w.owner.access) });
      assertEquals(list.status, 200);
      const [item] = await list.json() as Record<string, unknown>[];
      assert(item !== undefined);
      assert(!("key" in item) && !("hash" in item));
      assertEquals(item.usage_count, 0);
      assertEquals(item.last_used_at, null);
    }
  });
  await t.step("default expiry is 90 days; more than 365 is refused", async () => {
    assertEquals((await newKey(w)).expires_at, "2026-04-01T00:00:00.000Z");
    assertEquals((await createKey(w, { expires_in_days: 366 })).status, 422);
  });
  await t.step("scopes beyond the owner's permissions are refused", async () => {
    const res = await createKey(w, { scopes: ["profile:read", "users:manage"] });
    assertEquals(res.status, 422);
    assertMatch(JSON.stringify(await json(res)), /users:manage/);
    assertEquals((await createKey(w, { scopes: ["nope:nope"] })).status, 422);
  });
  await t.step("bad CIDRs are refused", async () => {
    for (const ip of ["10.0.0.0/33", "not-an-ip", "::1/129", "1.2.3.4; DROP"]) {
      assertEquals((await createKey(w, { allowed_ips: [ip] })).status, 422, ip);
    }
  });
  await t.step("creation is audited", async () => {
    assert((await auditTypes(w.kv)).includes("api_key.created"));
  });
});

Deno.test("an API key authenticates as its owner with its scopes", async (t) => {
  await using w = await world();
  const created = await newKey(w);
  await t.step("GET /users/me with X-API-Key", async () => {
    const res = await w.app.request("/users/me", ...withKey(created.key));
    assertEquals(res.status, 200);
    assertEquals((await json(res)).id, w.owner.id);
  });
  await t.step("a route needing a scope the key lacks is 403 insufficient_scope", async () => {
    const res = await w.app.request("/auth/sessions", ...withKey(created.key));
    assertEquals(res.status, 403);
    assertEquals((await json(res)).code, "insufficient_scope");
  });
  await t.step("unknown and malformed keys are 401", async () => {
    for (const key of ["bwk_" + "A".repeat(43), "bwk_short", "' OR 1=1 --", "x".repeat(5000)]) {
      const res = await w.app.request("/users/me", ...withKey(key));
      assertEquals(res.status, 401, key.slice(0, 20));
      assertEquals((await json(res)).code, "token_invalid");
    }
  });
  await t.step("a key can never manage keys", async () => {
    const all = await newKey(w, { scopes: ["profile:read", "apikeys:manage"] });
    const headers = { "x-api-key": String(all.key), "content-type": "application/json" };
    const attempts = [
      await w.app.request("/api-keys", { headers }),
      await w.app.request("/api-keys", {
        method: "POST",
        headers,
        body: JSON.stringify({ name: "x", scopes: ["profile:read"] }),
      }),
      await w.app.request(`/api-keys/${all.id}/rotate`, { method: "POST", headers }),
      await w.app.request(`/api-keys/${all.id}`, { method: "DELETE", headers }),
    ];
    for (const res of attempts) {
      assertEquals(res.status, 403);
      assertEquals((await json(res)).code, "forbidden");
    }
  });
  await t.step("refused uses are audited with a reason", async () => {
    assert((await auditTypes(w.kv)).includes("api_key.refused"));
  });
});

Deno.test("API key IP allowlists accept IPv4 and IPv6 CIDRs", async () => {
  await using w = await world();
  const key = (await newKey(w, { allowed_ips: ["192.0.2.0/24", "2001:db8::/32"] })).key;
  const cases: [string, number][] = [
    ["192.0.2.77", 200],
    ["::ffff:192.0.2.77", 200],
    ["2001:db8:1::5", 200],
    ["192.0.3.1", 403],
    ["2001:db9::1", 403],
    ["127.0.0.1", 403],
  ];
  for (const [ip, status] of cases) {
    const res = await w.app.request("/users/me", ...withKey(key, ip));
    assertEquals(res.status, status, ip);
    if (status === 403) assertEquals((await json(res)).code, "ip_not_allowed");
    else await res.body?.cancel();
  }
});

Deno.test("POST /api-keys/{id}/rotate keeps the old key for the grace period", async () => {
  await using w = await world();
  const old = await newKey(w);
  const res = await w.app.request(
    `/api-keys/${old.id}/rotate`,
    jsonInit("POST", { grace_hours: 2 }, bearer(w.owner.access)),
  );
  assertEquals(res.status, 201);
  const fresh = await json(res);
  assert(fresh.key !== old.key && fresh.id !== old.id);
  assertEquals(fresh.scopes, old.scopes);
  assertEquals((await w.app.request("/users/me", ...withKey(old.key))).status, 200);
  assertEquals((await w.app.request("/users/me", ...withKey(fresh.key))).status, 200);
  const listed = await (await w.app.request("/api-keys", { headers: bearer(w.owner.access) }))
    .json() as {
      id: string;
      rotated_at: string | null;
    }[];
  assertEquals(listed.find((k) => k.id === old.id)?.rotated_at, "2026-01-01T00:00:00.000Z");
  const again = await w.app.request(
    `/api-keys/${old.id}/rotate`,
    jsonInit("POST", {}, bearer(w.owner.access)),
  );
  assertEquals(again.status, 404, "a rotated key cannot be rotated again");
  w.clock.advance(2 * 3_600_000);
  assertEquals((await w.app.request("/users/me", ...withKey(old.key))).status, 401, "grace over");
  assertEquals((await w.app.request("/users/me", ...withKey(fresh.key))).status, 200);
  assert((await auditTypes(w.kv)).includes("api_key.rotated"));
});

Deno.test("DELETE /api-keys/{id} revokes at once, only for the owner", async () => {
  await using w = await world();
  const key = await newKey(w);
  const other = await signUp(w.app);
  const foreign = await w.app.request(`/api-keys/${key.id}`, {
    method: "DELETE",
    headers: bearer(other.access),
  });
  assertEquals(foreign.status, 404);
  assertEquals((await w.app.request("/users/me", ...withKey(key.key))).status, 200);
  const res = await w.app.request(`/api-keys/${key.id}`, {
    method: "DELETE",
    headers: bearer(w.owner.access),
  });
  assertEquals(res.status, 204);
  assertEquals((await w.app.request("/users/me", ...withKey(key.key))).status, 401);
  assert((await auditTypes(w.kv)).includes("api_key.revoked"));
});

Deno.test("API keys expire", async () => {
  await using w = await world();
  const key = await newKey(w, { expires_in_days: 1 });
  w.clock.advance(86_400_000 - 1000);
  assertEquals((await w.app.request("/users/me", ...withKey(key.key))).status, 200);
  w.clock.advance(1000);
  assertEquals((await w.app.request("/users/me", ...withKey(key.key))).status, 401);
});

Deno.test("the 11th active key is refused", async () => {
  await using w = await world();
  for (let i = 0; i < 10; i++) await newKey(w, { name: `k${i}` });
  const res = await createKey(w, { name: "k10" });
  assertEquals(res.status, 409);
  assertEquals((await json(res)).code, "conflict");
});

Deno.test("a key never reaches beyond what its owner holds now", async (t) => {
  await using w = await world();
  const services = w.services;
  const meta = { ip: "203.0.113.9", userAgent: "test", requestId: "r" };
  await t.step("an admin key's admin scopes go away when the owner is demoted", async () => {
    const adminToken = await promote(w, w.owner, "admin");
    const created = await w.app.request(
      "/api-keys",
      jsonInit(
        "POST",
        { name: "admin", scopes: ["profile:read", "audit:read"] },
        bearer(adminToken),
      ),
    );
    assertEquals(created.status, 201);
    const key = String((await json(created)).key);
    assertEquals(
      (await services.apiKeys.authenticate(key, meta)).scopes,
      new Set(["profile:read", "audit:read"]),
    );
    await services.users.updateUser(w.owner.id, (u) => ({ ...u, role: "user" }));
    assertEquals(
      (await services.apiKeys.authenticate(key, meta)).scopes,
      new Set(["profile:read"]),
    );
  });
  await t.step("a disabled owner's keys stop working", async () => {
    const key = await newKey(w);
    assertEquals((await w.app.request("/users/me", ...withKey(key.key))).status, 200);
    await services.users.updateUser(w.owner.id, (u) => ({ ...u, disabled: true }));
    assertEquals((await w.app.request("/users/me", ...withKey(key.key))).status, 401);
  });
});

Deno.test("API key usage is counted without a write per request", async () => {
  await using w = await world();
  const key = await newKey(w);
  for (let i = 0; i < 7; i++) {
    assertEquals(
      (await w.app.request("/users/me", ...withKey(key.key, "198.51.100.3"))).status,
      200,
    );
  }
  let counter = await w.kv.get(["api_key_usage", String(key.id)]);
  assertEquals(counter.value, null, "nothing written yet: uses are buffered");
  const list = await (await w.app.request("/api-keys", { headers: bearer(w.owner.access) }))
    .json() as {
      usage_count: number;
      last_used_at: string;
      last_used_ip: string;
    }[];
  assertEquals(list[0]?.usage_count, 7);
  assertEquals(list[0]?.last_used_ip, "198.51.100.3");
  assertEquals(list[0]?.last_used_at, "2026-01-01T00:00:00.000Z");
  counter = await w.kv.get(["api_key_usage", String(key.id)]);
  assert(counter.value !== null, "flushed as one sum mutation");
});
