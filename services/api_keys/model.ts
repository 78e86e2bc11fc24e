/** The API key service's records, views and contract. */
import type { CredentialView } from "../auth/credential_view.ts";
import type { Role } from "../auth/permissions.ts";
import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/logger.ts";
import type { RevocationFeed } from "../core/revocation_feed.ts";
import type { UserRecord } from "../identity/users.ts";
import type { RefusalSampler } from "../limits/refusal_sampler.ts";

/** A stored API key. Only a hash of the key is kept. */
export interface ApiKeyRecord {
  id: string;
  user_id: string;
  name: string;
  /** The first characters of the key, to recognise it in lists. */
  prefix: string;
  hash: string;
  scopes: string[];
  allowed_ips: string[];
  expires_at: string;
  created_at: string;
  /** Set on the old key when it was rotated; it dies at `expires_at` (end of grace). */
  rotated_at: string | null;
  replaced_by: string | null;
}

/** An API key as its owner sees it in a list. */
export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  allowed_ips: string[];
  expires_at: string;
  created_at: string;
  last_used_at: string | null;
  last_used_ip: string | null;
  usage_count: number;
  rotated_at: string | null;
}

/** A new key: the only time the key itself is shown. */
export interface CreatedApiKey {
  id: string;
  name: string;
  key: string;
  prefix: string;
  scopes: string[];
  allowed_ips: string[];
  expires_at: string;
  created_at: string;
}

/** A verified API-key caller. */
export interface ApiKeyIdentity {
  keyId: string;
  userId: string;
  /** The owner's current account record. */
  user: UserRecord;
  role: Role;
  /** The key's scopes, cut down to what the owner holds now (shared: read only). */
  scopes: ReadonlySet<string>;
}

/** Input of {@linkcode ApiKeyService.create}. */
export interface NewApiKey {
  name: string;
  scopes: string[];
  expiresInDays: number;
  allowedIps: string[];
}

/** Hashed API keys with scopes, expiry, rotation, IP allowlists and usage counts. */
export interface ApiKeyService {
  /**
   * Creates a key for `owner`, asked for by a credential holding `callerScopes`:
   * a key never gets a scope its owner's role or the asking credential lacks.
   *
   * @throws {ValidationError} scopes beyond the owner's permissions, bad CIDRs
   * @throws {InsufficientScopeError} scopes beyond the asking credential's own scopes
   * @throws {ConflictError} when the owner already has the maximum of live keys
   */
  create(
    owner: UserRecord,
    input: NewApiKey,
    callerScopes: ReadonlySet<string>,
    meta: RequestMeta,
  ): Promise<CreatedApiKey>;
  list(userId: string): Promise<ApiKeyView[]>;
  /**
   * Issues a new key; the old one keeps working for `graceHours`. A key in its
   * grace period still counts against the cap: at the cap, the oldest graces
   * end first, and a rotation that would still exceed it is refused.
   *
   * @throws {NotFoundError} when the key is not the caller's or is already rotated
   * @throws {InsufficientScopeError} when the key holds scopes the asking credential lacks
   * @throws {ConflictError} when the rotation would exceed the cap of live keys
   */
  rotate(
    userId: string,
    keyId: string,
    graceHours: number,
    callerScopes: ReadonlySet<string>,
    meta: RequestMeta,
  ): Promise<CreatedApiKey>;
  /**
   * Revokes a key at once.
   *
   * @throws {NotFoundError} when the key is not the caller's
   */
  revoke(userId: string, keyId: string, meta: RequestMeta): Promise<void>;
  /** Revokes every key of a user at once, keys in their grace period included; returns how many. */
  revokeAllForUser(userId: string): Promise<number>;
  /**
   * Checks a presented key.
   *
   * @throws {TokenInvalidError} unknown, expired, revoked, or its owner disabled
   * @throws {IpNotAllowedError} the caller's IP is outside the key's allowlist
   */
  authenticate(key: string, meta: RequestMeta): Promise<ApiKeyIdentity>;
  /** Writes buffered usage counts to the store. */
  flushUsage(): Promise<void>;
  /** Waits for a background flush, then writes what is left (shutdown, before the store closes). */
  drain(): Promise<void>;
}

/** Dependencies of {@linkcode createApiKeyService}. */
export interface ApiKeyDeps {
  kv: Deno.Kv;
  clock: Clock;
  audit: AuditService;
  sampler: RefusalSampler;
  logger: Logger;
  /** Server-side secret mixed into the key hash (HMAC-SHA256); unset = plain SHA-256. */
  pepper: Uint8Array | undefined;
  /** Live keys per user: every key that still authenticates, graces included. @default 10 */
  maxActiveKeys?: number;
  /** How often buffered usage is written. @default 5000 */
  usageFlushMs?: number;
  /** Every revocation or rotation is published here, in its own commit. */
  feed: RevocationFeed;
  /** Recently checked good keys, so the common request needs no store read. */
  view: CredentialView;
}
