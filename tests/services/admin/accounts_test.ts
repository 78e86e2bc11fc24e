import { GOOD_PASSWORD, login, signUp } from "../../_helpers/accounts.ts";
import { assertEquals } from "../../_helpers/assert.ts";
import { bearer } from "../../_helpers/http.ts";
import { openWorld } from "../../_helpers/world.ts";

const OPERATOR_PASSWORD = "Operator-Typed-77-Lantern!";

Deno.test("createAdmin() on an address someone already registered takes the account over", async (t) => {
  await using w = await openWorld();
  // Someone registered the address the operator meant for the admin, and holds a session.
  const squatter = await signUp(w.app);
  const { id, created } = await w.services.accounts.createAdmin(
    squatter.user.email,
    OPERATOR_PASSWORD,
  );

  await t.step("the same account, now admin", async () => {
    assertEquals([id, created], [squatter.id, false]);
    assertEquals((await w.services.users.getUser(id))?.role, "admin");
  });

  await t.step("the registrant's session and password no longer work", async () => {
    const me = await w.app.request("/users/me", { headers: bearer(squatter.access) });
    assertEquals(me.status, 401);
    const old = await login(w.app, { email: squatter.user.email, password: GOOD_PASSWORD });
    assertEquals(old.status, 401);
  });

  await t.step("the operator's password signs in", async () => {
    w.clock.advance(60_000); // past the progressive delay of the refused attempt
    const res = await login(w.app, { email: squatter.user.email, password: OPERATOR_PASSWORD });
    assertEquals(res.status, 200);
  });
});
