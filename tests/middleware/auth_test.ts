import { requirePermission, requireRole } from "../../middleware/auth.ts";
import { login, promote, signUp } from "../_helpers/accounts.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { bearer, json } from "../_helpers/http.ts";
import { auditTypes, openWorld } from "../_helpers/world.ts";

Deno.test("requireRole() and requirePermission() guard routes by hierarchy and scope", async (t) => {
  await using w = await openWorld();
  w.app.get("/probe/moderation", requireRole("moderator"), (c) => c.json({ ok: true }));
  w.app.get("/probe/audit", requirePermission("audit:read"), (c) => c.json({ ok: true }));
  w.app.get("/probe/profile", requirePermission("profile:read"), (c) => c.json({ ok: true }));
  const user = await signUp(w.app);
  const modToken = await promote(w, await signUp(w.app), "moderator");

  await t.step("anonymous callers get 401", async () => {
    assertEquals((await w.app.request("/probe/moderation")).status, 401);
  });
  await t.step("a user is below moderator: 403 forbidden", async () => {
    const res = await w.app.request("/probe/moderation", { headers: bearer(user.access) });
    assertEquals(res.status, 403);
    assertEquals((await json(res)).code, "forbidden");
  });
  await t.step("a moderator passes, and inherits user permissions", async () => {
    assertEquals(
      (await w.app.request("/probe/moderation", { headers: bearer(modToken) })).status,
      200,
    );
    assertEquals(
      (await w.app.request("/probe/profile", { headers: bearer(modToken) })).status,
      200,
    );
  });
  await t.step("an admin-only permission is refused to a moderator", async () => {
    const res = await w.app.request("/probe/audit", { headers: bearer(modToken) });
    assertEquals(res.status, 403);
    assertEquals((await json(res)).code, "forbidden");
  });
  await t.step("a token narrowed by scope gets 403 insufficient_scope", async () => {
    const narrow = await login(w.app, user.user, { scope: "notes:read" });
    const token = String((await json(narrow)).access_token);
    const res = await w.app.request("/probe/profile", { headers: bearer(token) });
    assertEquals(res.status, 403);
    assertEquals((await json(res)).code, "insufficient_scope");
  });
  await t.step("authorization failures are audited", async () => {
    assert((await auditTypes(w.kv)).includes("authz.denied"));
  });
});
