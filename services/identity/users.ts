import { commitOrRetry, RETRY, retryOnConflict } from "../core/kv.ts";
import type { Clock } from "../core/clock.ts";
import { ConflictError } from "../core/errors.ts";
import { userByEmailKey, userKey } from "../core/kv_keys.ts";
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
   * Applies `change` to the current record under a versionstamp check, retrying on a race.
   * Returns null when the user does not exist.
   */
  updateUser(
    userId: string,
    change: (user: UserRecord) => UserRecord,
  ): Promise<UserRecord | null>;
}

/** Dependencies of {@linkcode createUserService}. */
export interface UserDeps {
  kv: Deno.Kv;
  clock: Clock;
}

/** Lowercases and trims an email once, before it is used as a key. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
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
      const res = await kv.atomic()
        .check({ key: userKey(user.id), versionstamp: null })
        .check({ key: userByEmailKey(email), versionstamp: null })
        .set(userKey(user.id), user)
        .set(userByEmailKey(email), user.id)
        .commit();
      if (!res.ok) throw new ConflictError("Cannot create user: the email is already registered");
      return user;
    },
    async getUser(userId) {
      return (await kv.get<UserRecord>(userKey(userId))).value;
    },
    async getUserByEmail(email) {
      const index = await kv.get<string>(userByEmailKey(normalizeEmail(email)));
      if (index.value === null) return null;
      return (await kv.get<UserRecord>(userKey(index.value))).value;
    },
    async updateUser(userId, change) {
      return await retryOnConflict(async (attempt) => {
        const entry = await kv.get<UserRecord>(userKey(userId));
        if (entry.value === null) return null;
        const next = { ...change(entry.value), updated_at: clock.now().toISOString() };
        const op = kv.atomic().check(entry).set(userKey(userId), next);
        return (await commitOrRetry(op, attempt)) === RETRY ? RETRY : next;
      }, { exhausted: () => new ConflictError("Cannot update user: too many concurrent changes") });
    },
  };
}
