import type { RevocationFeed, Revoked } from "../core/revocation_feed.ts";
import type { CredentialView } from "./credential_view.ts";
import { expireInUntil, listByIndex, RETRY, retryOnConflict, tryCommit } from "../core/kv.ts";
import type { RequestMeta } from "../core/audit.ts";
import type { Clock } from "../core/clock.ts";
import { ConflictError, NotFoundError } from "../core/errors.ts";
import {
  revokedJtiKey,
  sessionByUserKey,
  sessionKey,
  sessionsByUserPrefix,
  userKey,
} from "../core/kv_keys.ts";
import type { UserRecord } from "../identity/users.ts";
import { randomId, sha256 } from "../core/crypto.ts";
import { ipPrefix } from "../limits/client_ip.ts";

/** A login session; its id is the tokens' `sid`. */
export interface SessionRecord {
  id: string;
  user_id: string;
  created_at: string;
  last_seen_at: string;
  /** Absolute end of the session: no refresh after this. */
  expires_at: string;
  ip: string;
  user_agent: string;
  remember_me: boolean;
  /** Scopes asked for at login (null: all of the role's); re-granted against the current role on refresh. */
  scope: string[] | null;
  /** The one refresh-token jti that may still be spent. */
  refresh_jti: string;
  /** SHA-256 of the client's User-Agent (and IP prefix when bound); a refresh must match it. */
  fingerprint: string;
  /** SHA-256 of the CSRF token, for sessions whose refresh token lives in a cookie. */
  csrf_hash: string | null;
  /**
   * The user's `password_changed_at` when this session's login checked the password; a
   * later change ends the session, even one created by a login racing the change.
   */
  password_version: string;
}

/** Input of {@linkcode SessionService.createSession}. */
export interface NewSession {
  userId: string;
  rememberMe: boolean;
  scope: string[] | null;
  meta: RequestMeta;
  expiresAt: Date;
  fingerprint: string;
  csrfHash: string | null;
  passwordVersion: string;
}

/** Outcome of an attempt to spend a refresh token. */
export type RotateResult = "rotated" | "lost_race";

/** Session storage, revocation and the access-token blacklist. */
export interface SessionService {
  /** Creates a session whose first refresh jti is `refreshJti`. */
  createSession(
    input: NewSession,
    refreshJti: (sessionId: string) => Promise<string>,
  ): Promise<SessionRecord>;
  getEntry(sessionId: string): Promise<Deno.KvEntryMaybe<SessionRecord>>;
  /** Spends the current refresh jti and stores the next one, atomically (first commit wins). */
  rotate(
    entry: Deno.KvEntry<SessionRecord>,
    next: { jti: string; csrfHash: string | null },
    meta: RequestMeta,
  ): Promise<RotateResult>;
  /** Deletes a session and its index entry; true when it existed. */
  revokeSession(sessionId: string): Promise<boolean>;
  /**
   * Revokes a session only if it belongs to `userId`.
   *
   * @throws {NotFoundError} when it does not exist or is someone else's (no existence leak)
   */
  revokeOwnSession(userId: string, sessionId: string): Promise<void>;
  /** Revokes every session of a user, except `keep`; returns how many were revoked. */
  revokeAllForUser(userId: string, keep?: string): Promise<number>;
  listForUser(userId: string): Promise<SessionRecord[]>;
  /** Blacklists an access-token jti until the token would have expired anyway. */
  revokeAccessToken(jti: string, expiresAt: Date): Promise<void>;
  /** One round trip: is the jti blacklisted, and does the session still exist? */
  checkAccess(
    jti: string,
    sessionId: string,
    userId: string,
  ): Promise<{ revoked: boolean; session: SessionRecord | null; user: UserRecord | null }>;
}

/** Dependencies of {@linkcode createSessionService}. */
export interface SessionDeps {
  kv: Deno.Kv;
  clock: Clock;
  /** Every revocation is published here, in its own commit. */
  feed: RevocationFeed;
  /** Recently checked good tokens, so the common request needs no store read. */
  view: CredentialView;
}

/** A token found not revoked, with its live session and account. */
interface GoodAccess {
  session: SessionRecord;
  user: UserRecord;
}

/** Creates the session service. */
export function createSessionService(deps: SessionDeps): SessionService {
  const { kv, clock, feed, view } = deps;

  /** Commits `op` with `revoked` on the feed, then drops them from this instance's view. */
  async function commitRevocation(
    op: Deno.AtomicOperation,
    revoked: readonly Revoked[],
  ): Promise<void> {
    const withFeed = feed.append(op, revoked);
    // Deletes and sets only: a failed commit is a busy store (another process), retried.
    await retryOnConflict(async (n) => (await tryCommit(withFeed, n)) ?? RETRY, {
      exhausted: () => new ConflictError("Cannot revoke: the store stayed busy"),
    });
    feed.applyLocal(revoked);
  }

  return {
    async createSession(input, refreshJti) {
      const now = clock.now();
      const id = randomId();
      const session: SessionRecord = {
        id,
        user_id: input.userId,
        created_at: now.toISOString(),
        last_seen_at: now.toISOString(),
        expires_at: input.expiresAt.toISOString(),
        ip: input.meta.ip,
        user_agent: input.meta.userAgent.slice(0, 256),
        remember_me: input.rememberMe,
        scope: input.scope,
        refresh_jti: await refreshJti(id),
        fingerprint: input.fingerprint,
        csrf_hash: input.csrfHash,
        password_version: input.passwordVersion,
      };
      const expireIn = expireInUntil(session.expires_at, now);
      const res = await kv.atomic()
        .check({ key: sessionKey(id), versionstamp: null })
        .set(sessionKey(id), session, { expireIn })
        .set(sessionByUserKey(input.userId, id), id, { expireIn })
        .commit();
      if (!res.ok) throw new ConflictError("Cannot create session: the id is taken");
      return session;
    },
    getEntry(sessionId) {
      return kv.get<SessionRecord>(sessionKey(sessionId));
    },
    async rotate(entry, rotation, meta) {
      const now = clock.now();
      const next: SessionRecord = {
        ...entry.value,
        refresh_jti: rotation.jti,
        csrf_hash: rotation.csrfHash,
        last_seen_at: now.toISOString(),
        ip: meta.ip,
      };
      const expireIn = expireInUntil(next.expires_at, now);
      const res = await kv.atomic()
        .check(entry)
        .set(sessionKey(next.id), next, { expireIn })
        .set(sessionByUserKey(next.user_id, next.id), next.id, { expireIn })
        .commit();
      return res.ok ? "rotated" : "lost_race";
    },
    async revokeSession(sessionId) {
      const entry = await kv.get<SessionRecord>(sessionKey(sessionId));
      if (entry.value === null) return false;
      await commitRevocation(
        kv.atomic()
          .delete(sessionKey(sessionId))
          .delete(sessionByUserKey(entry.value.user_id, sessionId)),
        [{ kind: "session", id: sessionId }],
      );
      return true;
    },
    async revokeOwnSession(userId, sessionId) {
      const index = await kv.get<string>(sessionByUserKey(userId, sessionId));
      if (index.value === null) throw new NotFoundError("No such session");
      await commitRevocation(
        kv.atomic().delete(sessionKey(sessionId)).delete(index.key),
        [{ kind: "session", id: sessionId }],
      );
    },
    async revokeAllForUser(userId, keep) {
      let count = 0;
      for await (const entry of kv.list<string>({ prefix: sessionsByUserPrefix(userId) })) {
        if (entry.value === keep) continue;
        await commitRevocation(
          kv.atomic().delete(sessionKey(entry.value)).delete(entry.key),
          [{ kind: "session", id: entry.value }],
        );
        count++;
      }
      return count;
    },
    async listForUser(userId) {
      const entries = await listByIndex<SessionRecord>(
        kv,
        sessionsByUserPrefix(userId),
        sessionKey,
      );
      return entries.map((e) => e.value);
    },
    async revokeAccessToken(jti, expiresAt) {
      const now = clock.now();
      await commitRevocation(
        kv.atomic().set(revokedJtiKey(jti), { expires_at: expiresAt.toISOString() }, {
          expireIn: expireInUntil(expiresAt, now),
        }),
        [{ kind: "jti", id: jti }],
      );
    },
    async checkAccess(jti, sessionId, userId) {
      const cacheKey = `access:${jti}`;
      const known = view.get<GoodAccess>(cacheKey);
      if (known !== undefined && known.session.id === sessionId && known.user.id === userId) {
        return { revoked: false, session: known.session, user: known.user };
      }
      const generation = view.generation();
      const [revoked, session, user] = await kv.getMany<[unknown, SessionRecord, UserRecord]>([
        revokedJtiKey(jti),
        sessionKey(sessionId),
        userKey(userId),
      ]);
      if (revoked.value === null && session.value !== null && user.value !== null) {
        view.remember(
          cacheKey,
          { session: session.value, user: user.value } satisfies GoodAccess,
          [`jti:${jti}`, `session:${sessionId}`, `user:${userId}`],
          generation,
        );
      }
      return { revoked: revoked.value !== null, session: session.value, user: user.value };
    },
  };
}

/**
 * A session fingerprint: the User-Agent, and optionally the client's network
 * prefix (/24 for IPv4, /64 for IPv6) so a roaming phone keeps its session.
 */
export function sessionFingerprint(userAgent: string, ip: string, bindIp: boolean): string {
  return sha256(`${userAgent}\n${bindIp ? ipPrefix(ip) : ""}`);
}
