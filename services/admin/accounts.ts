/**
 * Account administration, for the admin API and the command line alike: list
 * and search, role changes and disabling (which end every credential of the
 * account at once), unlocking, and making the first administrator. Every
 * change is audited with who acted, on whom, and what changed; the last active
 * administrator can be neither demoted nor disabled.
 *
 * @module
 */
import type { LockoutService } from "../auth/lockout.ts";
import type { Role } from "../auth/permissions.ts";
import { type Actor, authorize } from "../auth/policy.ts";
import type { CredentialRevocation } from "../auth/revocation.ts";
import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { Clock } from "../core/clock.ts";
import { ConflictError, NotFoundError } from "../core/errors.ts";
import { getManyChunked } from "../core/kv.ts";
import { userKey, usersByRolePrefix } from "../core/kv_keys.ts";
import type { Page } from "../core/pagination.ts";
import type { PasswordHasher } from "../identity/password_hasher.ts";
import type { PasswordPolicy } from "../identity/password_policy.ts";
import type { UserDirectory, UserQuery } from "../identity/user_directory.ts";
import {
  normalizeEmail,
  toPublicUser,
  type UserRecord,
  type UserService,
} from "../identity/users.ts";
import type { PublicUser } from "../identity/users.ts";

/** An account as administrators see it (never a hash). */
export interface AdminUserView extends PublicUser {
  disabled: boolean;
  updated_at: string;
  password_changed_at: string;
}

/** Who changes an account: a signed-in administrator, or the command line (store access). */
export type AdminActor =
  | { kind: "user"; actor: Actor; meta: RequestMeta }
  | { kind: "cli" };

/** A change to an account. */
export interface AccountChange {
  role?: Role | undefined;
  disabled?: boolean | undefined;
}

/** Account administration. */
export interface AccountAdminService {
  /** @throws {ForbiddenError} | {InsufficientScopeError} without `users:read` */
  list(actor: Actor, query: UserQuery): Promise<Page<AdminUserView>>;
  /** @throws {NotFoundError} for an unknown id */
  get(actor: Actor, userId: string): Promise<AdminUserView>;
  /**
   * Changes role and/or disabled. A role change or a disable revokes every session
   * and API key of the account; nothing else is rotated.
   *
   * @throws {NotFoundError} for an unknown id
   * @throws {ConflictError} when it would leave no active admin
   * @throws {ForbiddenError} | {InsufficientScopeError} without `users:manage`
   */
  update(by: AdminActor, userId: string, change: AccountChange): Promise<AdminUserView>;
  /** Clears the failed-login count and lock. @throws {NotFoundError} for an unknown id */
  unlock(actor: Actor, userId: string, meta: RequestMeta): Promise<void>;
  /**
   * Creates an admin account, or promotes an existing one (its password unchanged).
   *
   * @throws {PasswordPolicyError} when the password breaks the policy
   */
  createAdmin(email: string, password: string): Promise<{ id: string; created: boolean }>;
  /** The account of `email`. @throws {NotFoundError} */
  idOfEmail(email: string): Promise<string>;
}

/** Dependencies of {@linkcode createAccountAdminService}. */
export interface AccountAdminDeps {
  kv: Deno.Kv;
  clock: Clock;
  users: UserService;
  directory: UserDirectory;
  lockout: LockoutService;
  revocation: CredentialRevocation;
  audit: AuditService;
  hasher: PasswordHasher;
  policy: PasswordPolicy;
}

/** The administrator view of an account. */
export function toAdminView(user: UserRecord): AdminUserView {
  return {
    ...toPublicUser(user),
    disabled: user.disabled,
    updated_at: user.updated_at,
    password_changed_at: user.password_changed_at,
  };
}

function isActiveAdmin(user: UserRecord): boolean {
  return user.role === "admin" && !user.disabled;
}

/** Creates the account administration service. */
export function createAccountAdminService(deps: AccountAdminDeps): AccountAdminService {
  const { kv, users, audit } = deps;

  async function load(userId: string): Promise<UserRecord> {
    const user = await users.getUser(userId);
    if (user === null) throw new NotFoundError("No such user");
    return user;
  }

  /**
   * The other active admins' records, checked in the same commit as the change:
   * two admins demoting each other at once cannot both succeed.
   */
  async function otherActiveAdmins(userId: string): Promise<Deno.KvEntryMaybe<UserRecord>[]> {
    const ids: string[] = [];
    for await (const e of kv.list<string>({ prefix: usersByRolePrefix("admin") })) {
      if (e.value !== userId) ids.push(e.value);
    }
    const entries = await getManyChunked<UserRecord>(kv, ids.map(userKey));
    const active = entries.filter((e) => e.value !== null && isActiveAdmin(e.value));
    if (active.length === 0) {
      throw new ConflictError("Cannot demote or disable the last active admin");
    }
    return active;
  }

  async function promote(userId: string, passwordHash: string) {
    await service.update({ kind: "cli" }, userId, { role: "admin" });
    const now = deps.clock.now().toISOString();
    await users.updateUser(userId, (u) => ({
      ...u,
      password_hash: passwordHash,
      password_changed_at: now,
    }));
    await deps.revocation.revokeAll(userId, "operator");
    return { id: userId, created: false };
  }

  const service: AccountAdminService = {
    async list(actor, query) {
      authorize(actor, "users:read");
      const page = await deps.directory.list(query);
      return { items: page.items.map(toAdminView), next_cursor: page.next_cursor };
    },

    async get(actor, userId) {
      authorize(actor, "users:read");
      return toAdminView(await load(userId));
    },

    async update(by, userId, change) {
      if (by.kind === "user") authorize(by.actor, "users:manage");
      let before: UserRecord | undefined;
      const after = await users.updateUser(userId, (user) => {
        before = user;
        return {
          ...user,
          role: change.role ?? user.role,
          disabled: change.disabled ?? user.disabled,
        };
      }, {
        checks: async (prev, next) =>
          isActiveAdmin(prev) && !isActiveAdmin(next) ? await otherActiveAdmins(userId) : [],
      });
      if (after === null || before === undefined) throw new NotFoundError("No such user");
      const diff: Record<string, { from: unknown; to: unknown }> = {};
      if (before.role !== after.role) diff.role = { from: before.role, to: after.role };
      if (before.disabled !== after.disabled) {
        diff.disabled = { from: before.disabled, to: after.disabled };
      }
      const actorId = by.kind === "user" ? by.actor.userId : undefined;
      const request = by.kind === "user" ? by.meta : undefined;
      await audit.record({
        type: "admin.user_updated",
        outcome: "success",
        userId: actorId,
        targetUserId: userId,
        meta: request,
        details: { actor: actorId ?? "cli", change: diff },
      });
      // Only a change of reach ends credentials: enabling or a no-op rotates nothing.
      if (diff.role !== undefined || (diff.disabled !== undefined && after.disabled)) {
        await deps.revocation.revokeAll(
          userId,
          after.disabled && diff.disabled !== undefined ? "account_disabled" : "role_changed",
          { actorId, meta: request },
        );
      }
      return toAdminView(after);
    },

    async unlock(actor, userId, meta) {
      authorize(actor, "users:manage");
      const user = await load(userId);
      await deps.lockout.clear(user.email);
      await audit.record({
        type: "admin.user_unlocked",
        outcome: "success",
        userId: actor.userId,
        targetUserId: userId,
        meta,
        details: { actor: actor.userId },
      });
    },

    /**
     * An existing account becomes admin with the password the operator typed, and every
     * credential it had ends: whoever registered the address before (an unverified
     * sign-up by someone else, say) keeps no way in.
     */
    async createAdmin(email, password) {
      const normalized = normalizeEmail(email);
      await deps.policy.assert(password, [normalized]);
      const passwordHash = await deps.hasher.hash(password);
      const existing = await users.getUserByEmail(normalized);
      if (existing !== null) return await promote(existing.id, passwordHash);
      try {
        const user = await users.createUser({
          email: normalized,
          displayName: null,
          passwordHash,
          role: "admin",
        });
        await audit.record({
          type: "admin.user_created",
          outcome: "success",
          targetUserId: user.id,
          details: { actor: "cli", role: "admin" },
        });
        return { id: user.id, created: true };
      } catch (error) {
        // Registered between the lookup and the create: promote that account instead.
        if (!(error instanceof ConflictError)) throw error;
        const raced = await users.getUserByEmail(normalized);
        if (raced === null) throw error;
        return await promote(raced.id, passwordHash);
      }
    },

    async idOfEmail(email) {
      const user = await users.getUserByEmail(email);
      if (user === null) throw new NotFoundError("No account has this email");
      return user.id;
    },
  };
  return service;
}
