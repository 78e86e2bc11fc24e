import { login, promote, randomUser, signUp, tokenPair } from "../_helpers/accounts.ts";
import { assertEquals, assertProblem } from "../_helpers/assert.ts";
import { bearer, jsonInit } from "../_helpers/http.ts";
import { auditTypes, openWorld } from "../_helpers/world.ts";
import { assert } from "../_helpers/assert.ts";

Deno.test("lockdown refuses sign-ins with 503 maintenance on every instance of one store", async (t) => {
  using kv = await Deno.openKv(":memory:");
  await using a = await openWorld({ kv });
  await using b = await openWorld({ kv });
  const user = await signUp(a.app);
  const admin = await signUp(a.app);
  const adminAccess = await promote(a, admin, "admin");
  const pair = await tokenPair(await login(b.app, user.user));

  await t.step("before: instance b serves logins (and has loaded its view)", async () => {
    assertEquals((await login(b.app, user.user)).status, 200);
  });

  await a.services.ops.blocks.setLockdown(true, "incident 42", "test");

  await t.step("instance a applies it at once", async () => {
    await assertProblem(await login(a.app, user.user), 503, "maintenance");
  });

  await t.step("instance b applies it once its view is older than the poll interval", async () => {
    b.clock.advance(2_000);
    // The first request after the interval refreshes in the background; the next sees it.
    await login(b.app, user.user);
    await b.services.ops.blocks.refresh();
    await assertProblem(await login(b.app, user.user), 503, "maintenance");
  });

  await t.step("logins, registrations, refreshes and password resets are refused", async () => {
    await assertProblem(
      await b.app.request("/auth/register", jsonInit("POST", randomUser())),
      503,
      "maintenance",
    );
    await assertProblem(
      await b.app.request("/auth/refresh", jsonInit("POST", { refresh_token: pair.refresh })),
      503,
      "maintenance",
    );
    await assertProblem(
      await b.app.request("/auth/password/forgot", jsonInit("POST", { email: user.user.email })),
      503,
      "maintenance",
    );
    await assertProblem(
      await b.app.request(
        "/auth/password/reset",
        jsonInit("POST", { token: "x".repeat(43), new_password: "Another-Pass-77!" }),
      ),
      503,
      "maintenance",
    );
  });

  await t.step("signed-in users keep working; an admin credential passes the switch", async () => {
    assertEquals((await b.app.request("/users/me", { headers: bearer(user.access) })).status, 200);
    const res = await b.app.request(
      "/auth/login",
      jsonInit(
        "POST",
        { email: admin.user.email, password: admin.user.password },
        bearer(adminAccess),
      ),
    );
    assertEquals(res.status, 200);
  });

  await a.services.ops.blocks.setLockdown(false, "resolved", "test");

  await t.step("off: every instance serves sign-ins again within the interval", async () => {
    assertEquals((await login(a.app, user.user)).status, 200);
    b.clock.advance(2_000);
    await login(b.app, user.user);
    await b.services.ops.blocks.refresh();
    assertEquals((await login(b.app, user.user)).status, 200);
  });

  await t.step("both switches are audited; turning it on alerts", async () => {
    const types = await auditTypes(kv);
    assert(types.includes("ops.lockdown_on"));
    assert(types.includes("ops.lockdown_off"));
    await a.services.ops.intrusion.settled();
    await a.services.ops.alerts.settled();
    assert(a.logger.lines.some((l) => l.includes("security alert") && l.includes("kill_switch")));
  });
});
