import { promote, signUp } from "../_helpers/accounts.ts";
import { assert, assertEquals, assertProblem } from "../_helpers/assert.ts";
import { bearer, json, jsonInit, type Requester } from "../_helpers/http.ts";
import { auditEvents, openWorld } from "../_helpers/world.ts";
import { XSS_VECTORS } from "../_helpers/xss.ts";

async function createNote(
  app: Requester,
  token: string,
  note: { title: string; body: string },
): Promise<Record<string, unknown>> {
  const res = await app.request("/notes", jsonInit("POST", note, bearer(token)));
  assertEquals(res.status, 201, await res.clone().text());
  return await json(res);
}

async function listNotes(
  app: Requester,
  token: string,
  query: Record<string, string> = {},
): Promise<{ items: Record<string, unknown>[]; next_cursor: string | null }> {
  const res = await app.request(`/notes?${new URLSearchParams(query)}`, { headers: bearer(token) });
  assertEquals(res.status, 200, await res.clone().text());
  return await res.json();
}

Deno.test("notes CRUD for the owner", async (t) => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  let id = "";
  await t.step("POST /notes answers 201 with Location and a random id", async () => {
    const res = await w.app.request(
      "/notes",
      jsonInit("POST", { title: "First", body: "<p>Hello <b>world</b></p>" }, bearer(s.access)),
    );
    assertEquals(res.status, 201);
    const note = await json(res);
    id = String(note.id);
    assertEquals(res.headers.get("location"), `/notes/${id}`);
    assert(/^[A-Za-z0-9_-]{22}$/.test(id), id);
    assertEquals(note.owner_id, s.id);
    assertEquals(note.body, "<p>Hello <b>world</b></p>");
  });
  await t.step("GET, PATCH and DELETE /notes/{id}", async () => {
    const got = await w.app.request(`/notes/${id}`, { headers: bearer(s.access) });
    assertEquals((await json(got)).title, "First");
    const patched = await w.app.request(
      `/notes/${id}`,
      jsonInit("PATCH", { title: "Renamed" }, bearer(s.access)),
    );
    assertEquals(patched.status, 200);
    const after = await json(patched);
    assertEquals([after.title, after.body], ["Renamed", "<p>Hello <b>world</b></p>"]);
    const deleted = await w.app.request(`/notes/${id}`, {
      method: "DELETE",
      headers: bearer(s.access),
    });
    assertEquals(deleted.status, 204);
    await assertProblem(
      await w.app.request(`/notes/${id}`, { headers: bearer(s.access) }),
      404,
      "not_found",
    );
  });
  await t.step("unknown fields, owner_id included, are 422", async () => {
    for (
      const body of [{ title: "t", body: "b", owner_id: "x" }, { title: "t", body: "b", id: "x" }]
    ) {
      await assertProblem(
        await w.app.request("/notes", jsonInit("POST", body, bearer(s.access))),
        422,
        "validation_failed",
      );
    }
  });
  await t.step("anonymous callers get 401", async () => {
    await assertProblem(await w.app.request("/notes"), 401, "token_invalid");
  });
});

Deno.test("note bodies are sanitized against every XSS vector", async () => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  for (const vector of XSS_VECTORS) {
    const note = await createNote(w.app, s.access, { title: "x", body: vector });
    const body = String(note.body);
    for (const bad of [/<script/i, /<img/i, /<svg/i, /<iframe/i, /\son\w+=/i, /javascript:/i]) {
      assert(!bad.test(body), `${bad} kept in ${body} from ${vector}`);
    }
  }
});

Deno.test("notes ownership: other users get 403, moderators may act", async (t) => {
  await using w = await openWorld();
  const owner = await signUp(w.app);
  const other = await signUp(w.app);
  const mod = await signUp(w.app);
  const modToken = await promote(w, mod, "moderator");
  const note = await createNote(w.app, owner.access, { title: "Mine", body: "secret" });
  const path = `/notes/${note.id}`;
  await t.step("read, update and delete by another user are 403 forbidden, audited", async () => {
    const before = (await auditEvents(w.kv, "authz.denied")).length;
    await assertProblem(
      await w.app.request(path, { headers: bearer(other.access) }),
      403,
      "forbidden",
    );
    await assertProblem(
      await w.app.request(path, jsonInit("PATCH", { title: "pwned" }, bearer(other.access))),
      403,
      "forbidden",
    );
    await assertProblem(
      await w.app.request(path, { method: "DELETE", headers: bearer(other.access) }),
      403,
      "forbidden",
    );
    // The three refusals of one caller within a minute are one record (audit growth).
    const denied = await auditEvents(w.kv, "authz.denied");
    assertEquals(denied.length, before + 1);
    assertEquals(denied.at(-1)?.user_id, other.id);
    const still = await json(await w.app.request(path, { headers: bearer(owner.access) }));
    assertEquals(still.title, "Mine");
  });
  await t.step("another user's list never shows the note", async () => {
    assertEquals((await listNotes(w.app, other.access)).items, []);
  });
  await t.step("a moderator edits another user's note, audited as note.moderated", async () => {
    const res = await w.app.request(
      path,
      jsonInit("PATCH", { body: "<i>moderated</i>" }, bearer(modToken)),
    );
    assertEquals(res.status, 200);
    const edited = await json(res);
    assertEquals([edited.body, edited.owner_id], ["<i>moderated</i>", owner.id]);
    const [event] = await auditEvents(w.kv, "note.moderated");
    assertEquals(event?.user_id, mod.id);
    assertEquals(event?.details.target_user_id, owner.id);
  });
  await t.step("?all=true lists everyone's notes for moderators only", async () => {
    await createNote(w.app, other.access, { title: "Other's", body: "x" });
    await assertProblem(
      await w.app.request("/notes?all=true", { headers: bearer(other.access) }),
      403,
      "forbidden",
    );
    const all = await listNotes(w.app, modToken, { all: "true" });
    assertEquals(all.items.map((n) => n.title).sort(), ["Mine", "Other's"]);
    const own = await listNotes(w.app, modToken);
    assertEquals(own.items, []);
  });
  await t.step("a moderator deletes another user's note", async () => {
    const res = await w.app.request(path, { method: "DELETE", headers: bearer(modToken) });
    assertEquals(res.status, 204);
    assertEquals((await listNotes(w.app, owner.access)).items, []);
  });
});

Deno.test("GET /notes?q= is a literal, case-insensitive substring match", async (t) => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  const titles = [
    "100% sure",
    "snake_case name",
    "star * power",
    "regex .* here",
    `quote ' and " here`,
    "plain Words",
    "' OR '1'='1",
    `{"$ne": null}`,
    "a < b & c",
  ];
  for (const title of titles) {
    await createNote(w.app, s.access, { title, body: "<p>body TEXT</p>" });
    w.clock.advance(1000);
  }
  const search = async (q: string) =>
    (await listNotes(w.app, s.access, { q })).items.map((n) => String(n.title)).sort();
  for (
    const [q, expected] of [
      ["%", ["100% sure"]],
      ["_", ["snake_case name"]],
      ["*", ["regex .* here", "star * power"]],
      [".*", ["regex .* here"]],
      ["'", [`' OR '1'='1`, `quote ' and " here`]],
      [`"`, [`quote ' and " here`, `{"$ne": null}`]],
      ["' OR '1'='1", [`' OR '1'='1`]],
      [`{"$ne": null}`, [`{"$ne": null}`]],
      ["$ne", [`{"$ne": null}`]],
      ["WORDS", ["plain Words"]],
      ["< b &", ["a < b & c"]],
      ["[a-z]+", []],
      ["^", []],
      ["%%", []],
    ] as const
  ) {
    await t.step(`q=${q}`, async () => assertEquals(await search(q), [...expected].sort()));
  }
  await t.step("the body text matches, not its markup", async () => {
    assertEquals((await search("body text")).length, titles.length);
    assertEquals(await search("<p>"), []);
  });
});

Deno.test("GET /notes paginates 250 notes newest first with no duplicate or gap", async (t) => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  const created: string[] = [];
  for (let i = 0; i < 250; i++) {
    const note = await createNote(w.app, s.access, { title: `note ${i}`, body: "" });
    created.push(String(note.id));
    w.clock.advance(i % 3 === 0 ? 0 : 10); // same-millisecond notes too
  }
  for (const limit of [undefined, "1", "7", "100"]) {
    await t.step(`limit ${limit ?? "default"}`, async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: Record<string, string> = {};
        if (limit !== undefined) query.limit = limit;
        if (cursor !== null) query.cursor = cursor;
        const page = await listNotes(w.app, s.access, query);
        assert(page.items.length <= Number(limit ?? 20));
        seen.push(...page.items.map((n) => String(n.id)));
        cursor = page.next_cursor;
        pages++;
      } while (cursor !== null && pages < 300);
      assertEquals(seen.length, 250);
      assertEquals(new Set(seen).size, 250);
      assertEquals(seen, [...created].reverse());
    });
  }
  await t.step("limit outside 1-100 and forged cursors are 422", async () => {
    for (
      const query of [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=abc",
        "cursor=!!",
        "cursor=AAAA",
        "unknown=1",
      ]
    ) {
      await assertProblem(
        await w.app.request(`/notes?${query}`, { headers: bearer(s.access) }),
        422,
        "validation_failed",
      );
    }
  });
});

Deno.test("MAX_NOTES_PER_USER caps one user's notes with 409 limit_reached", async () => {
  await using w = await openWorld({ env: { MAX_NOTES_PER_USER: "3" } });
  const s = await signUp(w.app);
  const other = await signUp(w.app);
  const ids = [];
  for (let i = 0; i < 3; i++) {
    ids.push((await createNote(w.app, s.access, { title: `${i}`, body: "" })).id);
  }
  await assertProblem(
    await w.app.request("/notes", jsonInit("POST", { title: "4", body: "" }, bearer(s.access))),
    409,
    "limit_reached",
  );
  // The cap is per user, and deleting makes room again.
  await createNote(w.app, other.access, { title: "theirs", body: "" });
  await w.app.request(`/notes/${ids[0]}`, { method: "DELETE", headers: bearer(s.access) });
  await createNote(w.app, s.access, { title: "again", body: "" });
});

Deno.test("GET /notes?q= pages through matches and never serves a stale result", async (t) => {
  await using w = await openWorld();
  const s = await signUp(w.app);
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) {
    const note = await createNote(w.app, s.access, {
      title: `n${i}`,
      body: i % 2 === 0 ? "<p>even MATCH</p>" : "odd",
    });
    ids.push(String(note.id));
    w.clock.advance(1);
  }
  await t.step("15 matches in pages of 4, newest first, each once", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: Record<string, string> = { q: "match", limit: "4" };
      if (cursor !== null) query.cursor = cursor;
      const page = await listNotes(w.app, s.access, query);
      seen.push(...page.items.map((n) => String(n.id)));
      cursor = page.next_cursor;
    } while (cursor !== null);
    assertEquals(seen, ids.filter((_, i) => i % 2 === 0).reverse());
  });
  await t.step("an update or a delete shows in the next search", async () => {
    assertEquals((await listNotes(w.app, s.access, { q: "renamed" })).items, []);
    await w.app.request(
      `/notes/${ids[1]}`,
      jsonInit("PATCH", { title: "Renamed" }, bearer(s.access)),
    );
    assertEquals((await listNotes(w.app, s.access, { q: "renamed" })).items.map((n) => n.id), [
      ids[1],
    ]);
    await w.app.request(`/notes/${ids[1]}`, { method: "DELETE", headers: bearer(s.access) });
    assertEquals((await listNotes(w.app, s.access, { q: "renamed" })).items, []);
  });
  await t.step("a second instance on the same store sees the first one's writes", async () => {
    await using other = await openWorld({ kv: w.kv, clock: w.clock });
    assertEquals((await listNotes(other.app, s.access, { q: "fresh" })).items, []);
    await createNote(w.app, s.access, { title: "fresh", body: "" });
    assertEquals((await listNotes(other.app, s.access, { q: "fresh" })).items.length, 1);
  });
});
