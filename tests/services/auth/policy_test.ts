import { type Role } from "../../../services/auth/permissions.ts";
import { permissionsOf } from "../../../services/auth/permissions.ts";
import { type Actor, authorize, can, decide } from "../../../services/auth/policy.ts";
import { ForbiddenError, InsufficientScopeError } from "../../../services/core/errors.ts";
import { assert, assertEquals, assertThrows } from "../../_helpers/assert.ts";

function actor(role: Role, scopes?: string[]): Actor {
  return { userId: `u-${role}`, role, scopes: new Set(scopes ?? permissionsOf(role)) };
}

Deno.test("can() follows the role hierarchy admin > moderator > user", () => {
  const table: [string, boolean, boolean, boolean][] = [
    ["profile:update", true, true, true],
    ["notes:create", true, true, true],
    ["notes:list_all", false, true, true],
    ["users:read", false, true, true],
    ["users:manage", false, false, true],
    ["audit:read", false, false, true],
  ];
  for (const [action, user, moderator, admin] of table) {
    const a = action as Parameters<typeof can>[1];
    assertEquals([can(actor("user"), a), can(actor("moderator"), a), can(actor("admin"), a)], [
      user,
      moderator,
      admin,
    ], action);
  }
});

Deno.test("can() checks ownership: others' notes need notes:moderate", async (t) => {
  const own = { ownerId: "u-user" };
  const other = { ownerId: "someone-else" };
  await t.step("the owner may read, update and delete", () => {
    for (const a of ["notes:read", "notes:update", "notes:delete"] as const) {
      assert(can(actor("user"), a, own));
    }
  });
  await t.step("another user may not, a moderator and an admin may", () => {
    for (const a of ["notes:read", "notes:update", "notes:delete"] as const) {
      assert(!can(actor("user"), a, other));
      assert(can(actor("moderator"), a, other));
      assert(can(actor("admin"), a, other));
    }
  });
  await t.step("a moderator's credential without the notes:moderate scope may not", () => {
    const narrow = actor("moderator", ["notes:read", "notes:write"]);
    assertEquals(decide(narrow, "notes:update", other), {
      allowed: false,
      reason: "insufficient_scope",
      permission: "notes:moderate",
    });
    assert(can(narrow, "notes:update", { ownerId: narrow.userId }));
  });
});

Deno.test("authorize() tells forbidden (role) from insufficient_scope (credential)", () => {
  assertThrows(() => authorize(actor("user"), "users:manage"), ForbiddenError);
  assertThrows(
    () => authorize(actor("admin", ["profile:read"]), "users:manage"),
    InsufficientScopeError,
  );
  // A scope the role does not hold grants nothing.
  assertThrows(() => authorize(actor("user", ["users:manage"]), "users:manage"), ForbiddenError);
  authorize(actor("admin"), "users:manage");
});
