import type { Clock } from "../core/clock.ts";
import { ConflictError } from "../core/errors.ts";
import { commitOrRetry, expireInUntil, listByIndex, RETRY, retryOnConflict } from "../core/kv.ts";
import {
  oauth2CodeKey,
  oauth2ConsentByClientKey,
  oauth2ConsentKey,
  oauth2ConsentsByClientPrefix,
  oauth2ConsentsByUserPrefix,
  oauth2GrantByClientKey,
  oauth2GrantByUserKey,
  oauth2GrantKey,
  oauth2GrantsByClientPrefix,
  oauth2GrantsByUserPrefix,
  oauth2RefreshKey,
  oauth2RequestKey,
  oauth2RevokedJtiKey,
  oauth2SpentCodeKey,
} from "../core/kv_keys.ts";

/** An authorization code as stored, by the hash of the code (RFC 6749 §4.1.2). */
export interface CodeRecord {
  client_id: string;
  redirect_uri: string;
  /** S256 challenge (RFC 7636), or null for a confidential client that sent none. */
  code_challenge: string | null;
  user_id: string;
  /**
   * The user's `password_changed_at` when they signed in: a password change or reset
   * since then (account recovery) voids the code. Absent on codes stored before.
   */
  password_version?: string;
  scopes: string[];
  /** The grant the code will start; known in advance so a replay can revoke it. */
  grant_id: string;
  expires_at: string;
}

/** A grant: one user's authorization of one client; every token it issued dies with it. */
export interface GrantRecord {
  id: string;
  user_id: string;
  client_id: string;
  scopes: string[];
  /** SHA-256 of the one live refresh token; any other refresh token of this grant is spent. */
  refresh_hash: string | null;
  created_at: string;
  expires_at: string;
}

/** A refresh token as stored, by its hash; it is live only while its grant points at it. */
export interface RefreshRecord {
  grant_id: string;
  client_id: string;
  expires_at: string;
}

/** A remembered consent. */
export interface ConsentRecord {
  user_id: string;
  client_id: string;
  scopes: string[];
  granted_at: string;
}

/** An authorization request waiting for the user's login and consent. */
export interface PendingRequest {
  id: string;
  client_id: string;
  redirect_uri: string;
  scopes: string[];
  state: string;
  code_challenge: string | null;
  /** SHA-256 of the secret in the browser's binding cookie. */
  browser_hash: string;
  /** SHA-256 of the CSRF token in the page's form. */
  csrf_hash: string;
  /** Set once the user has logged in on the login page. */
  user_id: string | null;
  /** The user's `password_changed_at` at that login (see {@linkcode CodeRecord}). */
  password_version?: string | null;
  expires_at: string;
}

/** Result of claiming a code. */
export type CodeClaim =
  | { kind: "claimed"; code: CodeRecord }
  | { kind: "replayed"; grantId: string }
  | { kind: "unknown" };

/** KV persistence of the authorization server's state. */
export interface OAuth2Store {
  putRequest(request: PendingRequest): Promise<void>;
  getRequest(id: string): Promise<Deno.KvEntryMaybe<PendingRequest>>;
  /** Replaces a request read earlier; false when it changed or was used meanwhile. */
  updateRequest(entry: Deno.KvEntry<PendingRequest>, next: PendingRequest): Promise<boolean>;
  /** Deletes a request read earlier (single use); false when someone else did first. */
  takeRequest(entry: Deno.KvEntry<PendingRequest>): Promise<boolean>;
  putCode(codeHash: string, code: CodeRecord): Promise<void>;
  /** Deletes a code and remembers it as spent, in one commit; the first caller wins. */
  claimCode(codeHash: string): Promise<CodeClaim>;
  /** Creates a grant and its first refresh token (if any) in one commit. */
  /**
   * Stores a new grant while `consent` (as read) still stands: false when the consent
   * changed or was withdrawn meanwhile.
   */
  createGrant(
    grant: GrantRecord,
    refresh: RefreshRecord | null,
    consent: Deno.KvEntryMaybe<ConsentRecord>,
  ): Promise<boolean>;
  getGrant(grantId: string): Promise<Deno.KvEntryMaybe<GrantRecord>>;
  getRefresh(tokenHash: string): Promise<RefreshRecord | null>;
  /** Points the grant at a new refresh token; false when the grant changed (a lost race). */
  rotateRefresh(
    entry: Deno.KvEntry<GrantRecord>,
    newHash: string,
    refresh: RefreshRecord,
  ): Promise<boolean>;
  /** Deletes a grant and its index entries; returns the record if it existed. */
  deleteGrant(grantId: string): Promise<GrantRecord | null>;
  grantsOfUser(userId: string): Promise<GrantRecord[]>;
  grantsOfClient(clientId: string): Promise<GrantRecord[]>;
  revokeJti(jti: string, expiresAt: Date): Promise<void>;
  /** One round trip: the grant (if any), the jti blacklist, and two more records by key. */
  checkToken<A, B>(
    jti: string,
    grantId: string | null,
    keys: [Deno.KvKey, Deno.KvKey],
  ): Promise<{ grant: GrantRecord | null; revoked: boolean; a: A | null; b: B | null }>;
  getConsent(userId: string, clientId: string): Promise<ConsentRecord | null>;
  /** The consent with its versionstamp, to make a grant only while it stands. */
  getConsentEntry(userId: string, clientId: string): Promise<Deno.KvEntryMaybe<ConsentRecord>>;
  /** Adds `scopes` to the user's consent to the client. */
  addConsent(userId: string, clientId: string, scopes: readonly string[]): Promise<void>;
  consentsOfUser(userId: string): Promise<ConsentRecord[]>;
  /** Deletes a consent; returns whether there was one. */
  deleteConsent(userId: string, clientId: string): Promise<boolean>;
  consentUsersOfClient(clientId: string): Promise<string[]>;
}

/** Dependencies of {@linkcode createOAuth2Store}. */
export interface OAuth2StoreDeps {
  kv: Deno.Kv;
  clock: Clock;
  /** How long a spent code is remembered for replay detection. */
  spentCodeTtlMs: number;
}

/** Creates the KV store of the authorization server. */
export function createOAuth2Store(deps: OAuth2StoreDeps): OAuth2Store {
  const { kv, clock } = deps;
  const conflict = () => new ConflictError("Too many concurrent changes; try again");

  async function listPrefix<T>(prefix: Deno.KvKey): Promise<T[]> {
    const out: T[] = [];
    for await (const e of kv.list<T>({ prefix })) out.push(e.value);
    return out;
  }

  return {
    async putRequest(request) {
      await kv.set(oauth2RequestKey(request.id), request, {
        expireIn: expireInUntil(request.expires_at, clock.now()),
      });
    },
    getRequest(id) {
      return kv.get<PendingRequest>(oauth2RequestKey(id));
    },
    async updateRequest(entry, next) {
      const res = await kv.atomic().check(entry).set(entry.key, next, {
        expireIn: expireInUntil(next.expires_at, clock.now()),
      }).commit();
      return res.ok;
    },
    async takeRequest(entry) {
      return (await kv.atomic().check(entry).delete(entry.key).commit()).ok;
    },
    async putCode(codeHash, code) {
      await kv.set(oauth2CodeKey(codeHash), code, {
        expireIn: expireInUntil(code.expires_at, clock.now()),
      });
    },
    async claimCode(codeHash) {
      return await retryOnConflict<CodeClaim>(async (attempt) => {
        const [code, spent] = await kv.getMany<[CodeRecord, string]>([
          oauth2CodeKey(codeHash),
          oauth2SpentCodeKey(codeHash),
        ]);
        if (spent.value !== null) return { kind: "replayed", grantId: spent.value };
        if (code.value === null) return { kind: "unknown" };
        const op = kv.atomic().check(code).check(spent).delete(code.key)
          .set(spent.key, code.value.grant_id, { expireIn: deps.spentCodeTtlMs });
        return (await commitOrRetry(op, attempt)) === RETRY
          ? RETRY
          : { kind: "claimed", code: code.value };
      }, { exhausted: conflict });
    },
    async createGrant(grant, refresh, consent) {
      const expireIn = expireInUntil(grant.expires_at, clock.now());
      const op = kv.atomic()
        .check(consent)
        .check({ key: oauth2GrantKey(grant.id), versionstamp: null })
        .set(oauth2GrantKey(grant.id), grant, { expireIn })
        .set(oauth2GrantByUserKey(grant.user_id, grant.id), grant.id, { expireIn })
        .set(oauth2GrantByClientKey(grant.client_id, grant.id), grant.id, { expireIn });
      if (refresh !== null && grant.refresh_hash !== null) {
        op.set(oauth2RefreshKey(grant.refresh_hash), refresh, { expireIn });
      }
      return (await op.commit()).ok;
    },
    getGrant(grantId) {
      return kv.get<GrantRecord>(oauth2GrantKey(grantId));
    },
    async getRefresh(tokenHash) {
      return (await kv.get<RefreshRecord>(oauth2RefreshKey(tokenHash))).value;
    },
    async rotateRefresh(entry, newHash, refresh) {
      const expireIn = expireInUntil(entry.value.expires_at, clock.now());
      const res = await kv.atomic().check(entry)
        .set(entry.key, { ...entry.value, refresh_hash: newHash }, { expireIn })
        .set(oauth2RefreshKey(newHash), refresh, { expireIn })
        .commit();
      return res.ok;
    },
    async deleteGrant(grantId) {
      const entry = await kv.get<GrantRecord>(oauth2GrantKey(grantId));
      if (entry.value === null) return null;
      await kv.atomic()
        .delete(entry.key)
        .delete(oauth2GrantByUserKey(entry.value.user_id, grantId))
        .delete(oauth2GrantByClientKey(entry.value.client_id, grantId))
        .commit();
      return entry.value;
    },
    async grantsOfUser(userId) {
      return (await listByIndex<GrantRecord>(kv, oauth2GrantsByUserPrefix(userId), oauth2GrantKey))
        .map((e) => e.value);
    },
    async grantsOfClient(clientId) {
      return (await listByIndex<GrantRecord>(
        kv,
        oauth2GrantsByClientPrefix(clientId),
        oauth2GrantKey,
      )).map((e) => e.value);
    },
    async revokeJti(jti, expiresAt) {
      await kv.set(oauth2RevokedJtiKey(jti), true, {
        expireIn: expireInUntil(expiresAt, clock.now()),
      });
    },
    async checkToken<A, B>(jti: string, grantId: string | null, keys: [Deno.KvKey, Deno.KvKey]) {
      // A token without a grant reads the jti key twice rather than branching the round trip.
      const [revoked, grant, a, b] = await kv.getMany<[unknown, GrantRecord, A, B]>([
        oauth2RevokedJtiKey(jti),
        grantId === null ? oauth2RevokedJtiKey(jti) : oauth2GrantKey(grantId),
        ...keys,
      ]);
      return {
        revoked: revoked.value !== null,
        grant: grantId === null ? null : grant.value,
        a: a.value,
        b: b.value,
      };
    },
    async getConsent(userId, clientId) {
      return (await kv.get<ConsentRecord>(oauth2ConsentKey(userId, clientId))).value;
    },
    getConsentEntry(userId, clientId) {
      return kv.get<ConsentRecord>(oauth2ConsentKey(userId, clientId));
    },
    async addConsent(userId, clientId, scopes) {
      await retryOnConflict(async (attempt) => {
        const entry = await kv.get<ConsentRecord>(oauth2ConsentKey(userId, clientId));
        const merged = [...new Set([...(entry.value?.scopes ?? []), ...scopes])].sort();
        const record: ConsentRecord = {
          user_id: userId,
          client_id: clientId,
          scopes: merged,
          granted_at: clock.now().toISOString(),
        };
        const op = kv.atomic().check(entry).set(entry.key, record)
          .set(oauth2ConsentByClientKey(clientId, userId), userId);
        return (await commitOrRetry(op, attempt)) === RETRY ? RETRY : undefined;
      }, { exhausted: conflict });
    },
    consentsOfUser(userId) {
      return listPrefix<ConsentRecord>(oauth2ConsentsByUserPrefix(userId));
    },
    async deleteConsent(userId, clientId) {
      const entry = await kv.get<ConsentRecord>(oauth2ConsentKey(userId, clientId));
      await kv.atomic().delete(oauth2ConsentKey(userId, clientId))
        .delete(oauth2ConsentByClientKey(clientId, userId)).commit();
      return entry.value !== null;
    },
    consentUsersOfClient(clientId) {
      return listPrefix<string>(oauth2ConsentsByClientPrefix(clientId));
    },
  };
}
