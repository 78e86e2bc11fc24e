import type { RevocationFeed } from "../core/revocation_feed.ts";
import { commitOrRetry, RETRY, retryOnConflict, tryCommit } from "../core/kv.ts";
import type { Clock } from "../core/clock.ts";
import { ConflictError } from "../core/errors.ts";
import { userByEmailKey, userByRoleKey, userKey, userSearchKey } from "../core/kv_keys.ts";
import type { Role } from "../auth/permissions.ts";
import { randomId } from "../core/crypto.ts";

/** A stored account. `password_hash` never leaves the services layer. */
export interface UserRecord {
  id: string;
  email: string;
  display_name: string | null;
  role: Role;
  disabled: boolean;
  password_hash: string;
  password_changed_at: string;
  /** Earlier hashes, newest first (password history). */
  password_history: string[];
  bio: string | null;
  website: string | null;
  /** When the current address was proven (verification link or password reset); null until then. */
  email_verified_at: string | null;
  created_at: string;
  updated_at: string;
}

/** The account as clients see it. */
export interface PublicUser {
  id: string;
  email: string;
  display_name: string | null;
  role: Role;
  created_at: string;
  bio: string | null;
  website: string | null;
  email_verified: boolean;
}

/** Input of {@linkcode UserService.createUser}. */
export interface NewUser {
  email: string;
  displayName: string | null;
  passwordHash: string;
  role?: Role;
}

/** Account storage. */
export interface UserService {
  /**
   * @throws {ConflictError} when the email is taken
   */
  createUser(input: NewUser): Promise<UserRecord>;
  getUser(userId: string): Promise<UserRecord | null>;
  getUserByEmail(email: string): Promise<UserRecord | null>;
  /**
   * Applies `change` to the current record under a versionstamp check, retrying on a race,
   * and moves the search and role index entries with it. `options.checks` may return more
   * entries whose versionstamps the same commit must check (the last-admin guard).
   * Returns null when the user does not exist.
   */
  updateUser(
    userId: string,
    change: (user: UserRecord) => UserRecord,
    options?: UpdateOptions,
  ): Promise<UserRecord | null>;
}

/** Options of {@linkcode UserService.updateUser}. */
export interface UpdateOptions {
  /**
   * Called with the record as read and as changed, inside each attempt; the entries it
   * returns are checked in the same commit, so a concurrent change to any of them retries.
   * It may throw to refuse the change.
   */
  checks?: (
    before: UserRecord,
    after: UserRecord,
  ) => Promise<readonly Deno.KvEntryMaybe<unknown>[]>;
}

/** Dependencies of {@linkcode createUserService}. */
export interface UserDeps {
  kv: Deno.Kv;
  clock: Clock;
  /** Any change to an account may revoke its credentials' reach (role, disable, password). */
  feed: RevocationFeed;
}

/** Lowercases and trims an email once, before it is used as a key. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/**
 * The search form of a text (a display name, or a query): NFKC, lowercase, runs of
 * white space as one space, trimmed — so look-alike forms find each other.
 */
export function normalizeSearchTerm(text: string): string {
  return text.normalize("NFKC").toLowerCase().replace(/\s+/gu, " ").trim();
}

/** The search terms of a user: the normalised email and display name (deduplicated). */
export function searchTerms(user: Pick<UserRecord, "email" | "display_name">): string[] {
  const terms = [normalizeSearchTerm(user.email)];
  const name = user.display_name === null ? "" : normalizeSearchTerm(user.display_name);
  if (name !== "" && name !== terms[0]) terms.push(name);
  return terms;
}

/**
 * Every index entry of a user and its value (the user id): the unique email index, one
 * search entry per term and the role index. Written in the record's own commit.
 */
export function userIndexEntries(user: UserRecord): Array<[Deno.KvKey, string]> {
  return [
    [userByEmailKey(user.email), user.id],
    ...searchTerms(user).map((t): [Deno.KvKey, string] => [userSearchKey(t, user.id), user.id]),
    [userByRoleKey(user.role, user.id), user.id],
  ];
}

/** Whether two KV keys are equal (strings and numbers only, as ours are). */
function sameKey(a: Deno.KvKey, b: Deno.KvKey): boolean {
  return a.length === b.length && a.every((part, i) => part === b[i]);
}

/** The client-facing view of a user. */
export function toPublicUser(user: UserRecord): PublicUser {
  return {
    id: user.id,
    email: user.email,
    display_name: user.display_name,
    role: user.role,
    created_at: user.created_at,
    bio: user.bio,
    website: user.website,
    // Records written before verification existed carry no field: unverified.
    email_verified: (user.email_verified_at ?? null) !== null,
  };
}

/** Creates the user store. */
export function createUserService(deps: UserDeps): UserService {
  const { kv, clock } = deps;
  return {
    async createUser(input) {
      const now = clock.now().toISOString();
      const email = normalizeEmail(input.email);
      const user: UserRecord = {
        id: randomId(),
        email,
        display_name: input.displayName,
        role: input.role ?? "user",
        disabled: false,
        password_hash: input.passwordHash,
        password_changed_at: now,
        password_history: [],
        bio: null,
        website: null,
        email_verified_at: null,
        created_at: now,
        updated_at: now,
      };
      const taken = () => new ConflictError("Cannot create user: the email is already registered");
      return await retryOnConflict(async (attempt) => {
        const op = kv.atomic()
          .check({ key: userKey(user.id), versionstamp: null })
          .check({ key: userByEmailKey(email), versionstamp: null })
          .set(userKey(user.id), user);
        for (const [key, value] of userIndexEntries(user)) op.set(key, value);
        if (await tryCommit(op, attempt) !== null) return user;
        // A failed check means the email is taken; otherwise the store was busy (another process).
        if ((await kv.get(userByEmailKey(email))).value !== null) throw taken();
        return RETRY;
      }, { exhausted: taken });
    },
    async getUser(userId) {
      return (await kv.get<UserRecord>(userKey(userId))).value;
    },
    async getUserByEmail(email) {
      const index = await kv.get<string>(userByEmailKey(normalizeEmail(email)));
      if (index.value === null) return null;
      return (await kv.get<UserRecord>(userKey(index.value))).value;
    },
    async updateUser(userId, change, options = {}) {
      return await retryOnConflict(async (attempt) => {
        const entry = await kv.get<UserRecord>(userKey(userId));
        if (entry.value === null) return null;
        const next = { ...change(entry.value), updated_at: clock.now().toISOString() };
        if (next.id !== userId || next.email !== entry.value.email) {
          throw new TypeError("Cannot update user: the id and email are fixed");
        }
        // Any change may narrow the account's reach (role, disable, password): on the feed.
        const revoked = [{ kind: "user", id: userId }] as const;
        const op = deps.feed.append(kv.atomic().check(entry).set(userKey(userId), next), revoked);
        for (const other of await options.checks?.(entry.value, next) ?? []) op.check(other);
        const before = userIndexEntries(entry.value);
        const after = userIndexEntries(next);
        for (const [key] of before) {
          if (!after.some(([k]) => sameKey(k, key))) op.delete(key);
        }
        for (const [key, value] of after) {
          if (!before.some(([k]) => sameKey(k, key))) op.set(key, value);
        }
        if ((await commitOrRetry(op, attempt)) === RETRY) return RETRY;
        deps.feed.applyLocal(revoked);
        return next;
      }, { exhausted: () => new ConflictError("Cannot update user: too many concurrent changes") });
    },
  };
}
