import { expireInUntil, listByIndex } from "../core/kv.ts";
import type { RequestMeta } from "../core/audit.ts";
import {
  ConflictError,
  InsufficientScopeError,
  IpNotAllowedError,
  NotFoundError,
  TokenInvalidError,
  ValidationError,
} from "../core/errors.ts";
import { hmacSha256, randomSecret, sha256, timingSafeEqual } from "../core/crypto.ts";
import { formatCidr, ipAllowed, parseCidr } from "../limits/ip_allowlist.ts";
import {
  apiKeyByHashKey,
  apiKeyByUserKey,
  apiKeyKey,
  apiKeyLastUseKey,
  apiKeysByUserPrefix,
  apiKeySetKey,
  apiKeyUsageKey,
  userKey,
} from "../core/kv_keys.ts";
import { isPermission, permissionsOf, type Role } from "../auth/permissions.ts";
import { randomId } from "../core/crypto.ts";
import type { UserRecord } from "../identity/users.ts";
import type {
  ApiKeyDeps,
  ApiKeyRecord,
  ApiKeyService,
  ApiKeyView,
  CreatedApiKey,
} from "./model.ts";

export type {
  ApiKeyDeps,
  ApiKeyIdentity,
  ApiKeyRecord,
  ApiKeyService,
  ApiKeyView,
  CreatedApiKey,
  NewApiKey,
} from "./model.ts";

/** `bwk_` + 43 base64url characters: 32 random bytes, like `secrets.token_urlsafe(32)`. */
const KEY_FORMAT = /^bwk_[A-Za-z0-9_-]{43}$/;
const PREFIX_LENGTH = 12;

interface UsageBuffer {
  count: number;
  /** Unix ms of the last use; written as ISO text when flushed, not per request. */
  lastAtMs: number;
  lastIp: string;
}

/** Creates the API key service. */
export function createApiKeyService(deps: ApiKeyDeps): ApiKeyService {
  const { kv, clock, audit } = deps;
  const maxActive = deps.maxActiveKeys ?? 10;
  const flushMs = deps.usageFlushMs ?? 5000;
  const usage = new Map<string, UsageBuffer>();
  let lastFlush = clock.now().getTime();
  let flushing: Promise<void> | null = null;

  function hashKey(key: string): string {
    return deps.pepper === undefined ? sha256(key) : hmacSha256(deps.pepper, key);
  }

  function newKey(): string {
    return `bwk_${randomSecret()}`;
  }

  function created(record: ApiKeyRecord, key: string): CreatedApiKey {
    return {
      id: record.id,
      name: record.name,
      key,
      prefix: record.prefix,
      scopes: record.scopes,
      allowed_ips: record.allowed_ips,
      expires_at: record.expires_at,
      created_at: record.created_at,
    };
  }

  async function listRecords(userId: string): Promise<Deno.KvEntry<ApiKeyRecord>[]> {
    return await listByIndex<ApiKeyRecord>(kv, apiKeysByUserPrefix(userId), apiKeyKey);
  }

  /** Every key of the user that still authenticates: active ones and those in a grace period. */
  async function liveRecords(userId: string, now: Date): Promise<Deno.KvEntry<ApiKeyRecord>[]> {
    return (await listRecords(userId)).filter((e) => new Date(e.value.expires_at) > now);
  }

  /** Makes `op` fail if the user's set of keys changed since `seen` was read, and marks it changed. */
  function bumpKeySet(op: Deno.AtomicOperation, seen: Deno.KvEntryMaybe<unknown>): void {
    op.check(seen).set(seen.key, randomId());
  }

  /** Commits `op` with the keys on the revocation feed, then drops them from this instance's view. */
  async function commitRevocation(
    op: Deno.AtomicOperation,
    keyIds: readonly string[],
  ): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    const revoked = keyIds.map((id) => ({ kind: "api_key", id }) as const);
    const res = await deps.feed.append(op, revoked).commit();
    if (res.ok) deps.feed.applyLocal(revoked);
    return res;
  }

  function deleteRecord(op: Deno.AtomicOperation, r: ApiKeyRecord): Deno.AtomicOperation {
    return op
      .delete(apiKeyKey(r.id))
      .delete(apiKeyByHashKey(r.hash))
      .delete(apiKeyByUserKey(r.user_id, r.id))
      .delete(apiKeyUsageKey(r.id))
      .delete(apiKeyLastUseKey(r.id));
  }

  async function store(record: ApiKeyRecord, now: Date, guard: (op: Deno.AtomicOperation) => void) {
    const expireIn = expireInUntil(record.expires_at, now);
    const op = kv.atomic()
      .check({ key: apiKeyKey(record.id), versionstamp: null })
      .check({ key: apiKeyByHashKey(record.hash), versionstamp: null })
      .set(apiKeyKey(record.id), record, { expireIn })
      .set(apiKeyByHashKey(record.hash), { id: record.id, user_id: record.user_id }, { expireIn })
      .set(apiKeyByUserKey(record.user_id, record.id), record.id, { expireIn });
    guard(op);
    if (!(await op.commit()).ok) {
      throw new ConflictError("Cannot store API key: a concurrent change won");
    }
  }

  async function refuse(
    reason: string,
    meta: RequestMeta,
    keyId: string | undefined,
    error: () => Error,
  ): Promise<never> {
    // Sampled per reason and address, so a flood of bad keys cannot flood the audit store.
    const sample = { name: "api_key_refused", key: `${reason}:${meta.ip}` };
    if (await deps.sampler.shouldAudit(sample, { limit: 1, windowMs: 60_000, burst: 1 })) {
      await audit.record({
        type: "api_key.refused",
        outcome: "failure",
        meta,
        details: { reason, ...(keyId === undefined ? {} : { key_id: keyId }) },
      });
    }
    throw error();
  }

  // A key's usable scopes per remembered record and owner role, made once: the view
  // hands out the same record object until the key or its owner changes.
  const scopeSets = new WeakMap<ApiKeyRecord, { role: Role; scopes: ReadonlySet<string> }>();
  function scopesOf(record: ApiKeyRecord, role: Role): ReadonlySet<string> {
    const known = scopeSets.get(record);
    if (known !== undefined && known.role === role) return known.scopes;
    // Never more than the owner has now: a demoted owner's keys shrink with them.
    const current = permissionsOf(role);
    const scopes: ReadonlySet<string> = new Set(
      record.scopes.filter((s) => current.has(s as never)),
    );
    scopeSets.set(record, { role, scopes });
    return scopes;
  }

  function recordUse(keyId: string, meta: RequestMeta, now: Date): void {
    let entry = usage.get(keyId);
    if (entry === undefined) usage.set(keyId, entry = { count: 0, lastAtMs: 0, lastIp: "" });
    entry.count++;
    entry.lastAtMs = now.getTime();
    entry.lastIp = meta.ip;
    if (now.getTime() - lastFlush >= flushMs && flushing === null) {
      lastFlush = now.getTime();
      // Off the request path: batching keeps hot keys from becoming one contended write per use.
      flushing = service.flushUsage().catch((error) => {
        deps.logger.error("api key usage flush failed", { error });
      }).finally(() => {
        flushing = null;
      });
    }
  }

  /**
   * A rotation adds a live key while the old one is in its grace period. At the
   * cap, graces end oldest first; if none is left to end, only a rotation
   * without grace (the old key dies at once) keeps within the cap.
   */
  async function makeRoomForRotation(userId: string, graceHours: number, now: Date) {
    if (graceHours === 0) return;
    const live = await liveRecords(userId, now);
    let excess = live.length + 1 - maxActive;
    if (excess <= 0) return;
    const inGrace = live.filter((e) => e.value.replaced_by !== null)
      .sort((a, b) => a.value.expires_at.localeCompare(b.value.expires_at));
    for (const entry of inGrace) {
      if (excess <= 0) break;
      // A lost check means the key changed meanwhile; it is counted as still live.
      const op = deleteRecord(kv.atomic().check(entry), entry.value);
      if (!(await commitRevocation(op, [entry.value.id])).ok) continue;
      usage.delete(entry.value.id);
      excess--;
    }
    if (excess > 0) {
      throw new ConflictError(
        `Cannot rotate with a grace period: at most ${maxActive} live keys per user; ` +
          "revoke a key or rotate with grace_hours 0",
      );
    }
  }

  /**
   * The key record and its owner by key hash: from the view when it holds them, else the
   * store. A record whose hash is not this one (the index outlived a rotation) counts as
   * none and is never remembered, so what the view holds always matches its hash.
   */
  async function lookup(
    hash: string,
  ): Promise<{ record: ApiKeyRecord | null; owner: UserRecord | null } | null> {
    const cacheKey = `api_key:${hash}`;
    const known = deps.view.get<{ record: ApiKeyRecord; owner: UserRecord }>(cacheKey);
    if (known !== undefined) return known;
    const generation = deps.view.generation();
    const index = await kv.get<{ id: string; user_id: string }>(apiKeyByHashKey(hash));
    if (index.value === null) return null;
    const [recordEntry, userEntry] = await kv.getMany<[ApiKeyRecord, UserRecord]>([
      apiKeyKey(index.value.id),
      userKey(index.value.user_id),
    ]);
    const stored = recordEntry.value;
    const record = stored !== null && timingSafeEqual(stored.hash, hash) ? stored : null;
    const owner = userEntry.value;
    if (record !== null && owner !== null) {
      deps.view.remember(
        cacheKey,
        { record, owner },
        [`api_key:${record.id}`, `user:${owner.id}`],
        generation,
      );
    }
    return { record, owner };
  }

  const service: ApiKeyService = {
    async create(owner, input, callerScopes, meta) {
      const now = clock.now();
      const granted = permissionsOf(owner.role);
      const errors = input.scopes
        .filter((s) => !isPermission(s) || !granted.has(s))
        .map((s) => ({ path: "scopes", message: `Scope "${s}" is not one of your permissions` }));
      // A narrowly scoped token must not mint a wider key (security review #10, finding 2).
      const beyondCaller = input.scopes.filter((s) =>
        granted.has(s as never) && !callerScopes.has(s)
      );
      if (errors.length === 0 && beyondCaller.length > 0) {
        throw new InsufficientScopeError(
          `This credential cannot grant scopes it does not hold: ${beyondCaller.join(", ")}`,
        );
      }
      const ranges = input.allowedIps.map((text) => ({ text, cidr: parseCidr(text) }));
      for (const r of ranges) {
        if (r.cidr === null) {
          errors.push({ path: "allowed_ips", message: `"${r.text}" is not an IP address or CIDR` });
        }
      }
      if (errors.length > 0) throw new ValidationError("Request validation failed", { errors });
      // Read before counting and checked in the commit that adds the key: of two
      // concurrent creations (any instance) at the cap, one fails instead of both passing.
      const keySet = await kv.get(apiKeySetKey(owner.id));
      // Keys in a grace period still authenticate, so they count (security review #10, finding 6).
      const live = await liveRecords(owner.id, now);
      if (live.length >= maxActive) {
        throw new ConflictError(`Cannot create API key: at most ${maxActive} live keys per user`);
      }
      const key = newKey();
      const record: ApiKeyRecord = {
        id: randomId(),
        user_id: owner.id,
        name: input.name,
        prefix: key.slice(0, PREFIX_LENGTH),
        hash: hashKey(key),
        scopes: [...new Set(input.scopes)],
        allowed_ips: ranges.map((r) => formatCidr(r.cidr!)),
        expires_at: new Date(now.getTime() + input.expiresInDays * 86_400_000).toISOString(),
        created_at: now.toISOString(),
        rotated_at: null,
        replaced_by: null,
      };
      await store(record, now, (op) => bumpKeySet(op, keySet));
      await audit.record({
        type: "api_key.created",
        outcome: "success",
        userId: owner.id,
        meta,
        details: { key_id: record.id, scopes: record.scopes, prefix: record.prefix },
      });
      return created(record, key);
    },

    async list(userId) {
      await service.flushUsage();
      const records = await listRecords(userId);
      const views: ApiKeyView[] = [];
      for (const { value: r } of records) {
        const [count, last] = await kv.getMany<[Deno.KvU64, { at: string; ip: string }]>([
          apiKeyUsageKey(r.id),
          apiKeyLastUseKey(r.id),
        ]);
        views.push({
          id: r.id,
          name: r.name,
          prefix: r.prefix,
          scopes: r.scopes,
          allowed_ips: r.allowed_ips,
          expires_at: r.expires_at,
          created_at: r.created_at,
          last_used_at: last.value?.at ?? null,
          last_used_ip: last.value?.ip ?? null,
          usage_count: Number(count.value?.value ?? 0n),
          rotated_at: r.rotated_at,
        });
      }
      return views.sort((a, b) => b.created_at.localeCompare(a.created_at));
    },

    async rotate(userId, keyId, graceHours, callerScopes, meta) {
      const now = clock.now();
      const entry = await kv.get<ApiKeyRecord>(apiKeyKey(keyId));
      const old = entry.value;
      if (
        old === null || old.user_id !== userId || old.replaced_by !== null ||
        new Date(old.expires_at) <= now
      ) {
        throw new NotFoundError("No such active API key");
      }
      // A rotation hands out a working secret: the same rule as creating one (a narrowly
      // scoped token must not obtain a wider key).
      const beyondCaller = old.scopes.filter((s) => !callerScopes.has(s));
      if (beyondCaller.length > 0) {
        throw new InsufficientScopeError(
          `This credential cannot rotate a key with scopes it does not hold: ${
            beyondCaller.join(", ")
          }`,
        );
      }
      const keySet = await kv.get(apiKeySetKey(userId));
      await makeRoomForRotation(userId, graceHours, now);
      const key = newKey();
      const record: ApiKeyRecord = {
        ...old,
        id: randomId(),
        prefix: key.slice(0, PREFIX_LENGTH),
        hash: hashKey(key),
        created_at: now.toISOString(),
      };
      const graceEnd = new Date(
        Math.min(now.getTime() + graceHours * 3_600_000, new Date(old.expires_at).getTime()),
      );
      const retired: ApiKeyRecord = {
        ...old,
        expires_at: graceEnd.toISOString(),
        rotated_at: now.toISOString(),
        replaced_by: record.id,
      };
      const oldExpireIn = expireInUntil(retired.expires_at, now);
      // One commit: the new key appears exactly when the old one starts its grace period.
      await store(record, now, (op) => {
        bumpKeySet(op, keySet);
        // The old key's grace starts: drop every instance's view of it.
        deps.feed.append(op, [{ kind: "api_key", id: old.id }]);
        op.check(entry)
          .set(apiKeyKey(old.id), retired, { expireIn: oldExpireIn })
          .set(apiKeyByHashKey(old.hash), { id: old.id, user_id: old.user_id }, {
            expireIn: oldExpireIn,
          })
          .set(apiKeyByUserKey(old.user_id, old.id), old.id, { expireIn: oldExpireIn });
      });
      deps.feed.applyLocal([{ kind: "api_key", id: old.id }]);
      await audit.record({
        type: "api_key.rotated",
        outcome: "success",
        userId,
        meta,
        details: { key_id: old.id, new_key_id: record.id, grace_until: retired.expires_at },
      });
      return created(record, key);
    },

    async revoke(userId, keyId, meta) {
      const entry = await kv.get<ApiKeyRecord>(apiKeyKey(keyId));
      if (entry.value === null || entry.value.user_id !== userId) {
        throw new NotFoundError("No such API key");
      }
      const r = entry.value;
      await commitRevocation(deleteRecord(kv.atomic(), r), [r.id]);
      usage.delete(r.id);
      await audit.record({
        type: "api_key.revoked",
        outcome: "success",
        userId,
        meta,
        details: { key_id: r.id },
      });
    },

    async revokeAllForUser(userId) {
      const records = await listRecords(userId);
      // Five keys per record: ten records stay well inside one commit's mutation limit.
      for (let i = 0; i < records.length; i += 10) {
        const op = kv.atomic();
        const batch = records.slice(i, i + 10).map((e) => e.value);
        for (const value of batch) deleteRecord(op, value);
        await commitRevocation(op, batch.map((r) => r.id));
      }
      for (const { value } of records) usage.delete(value.id);
      return records.length;
    },

    async authenticate(key, meta) {
      const now = clock.now();
      // Made only for a refusal: an error captures a stack trace, too dear for every request.
      const invalid = () => new TokenInvalidError("The API key is invalid, expired or revoked");
      if (!KEY_FORMAT.test(key)) return await refuse("malformed", meta, undefined, invalid);
      const hash = hashKey(key);
      const found = await lookup(hash);
      if (found === null) return await refuse("unknown", meta, undefined, invalid);
      const { record, owner } = found;
      if (record === null) return await refuse("revoked", meta, undefined, invalid);
      if (Date.parse(record.expires_at) <= now.getTime()) {
        return await refuse("expired", meta, record.id, invalid);
      }
      if (owner === null || owner.disabled) {
        return await refuse("owner_disabled", meta, record.id, invalid);
      }
      if (record.allowed_ips.length > 0 && !ipAllowed(meta.ip, record.allowed_ips)) {
        return await refuse(
          "ip_not_allowed",
          meta,
          record.id,
          () => new IpNotAllowedError("This API key may not be used from this address"),
        );
      }
      recordUse(record.id, meta, now);
      return {
        keyId: record.id,
        userId: owner.id,
        user: owner,
        role: owner.role,
        scopes: scopesOf(record, owner.role),
      };
    },

    async drain() {
      await flushing;
      await service.flushUsage();
    },

    async flushUsage() {
      if (usage.size === 0) return;
      const batch = [...usage.entries()];
      usage.clear();
      for (const [id, u] of batch) {
        // `sum` mutations never conflict, so instances sharing a store do not contend.
        await kv.atomic()
          .sum(apiKeyUsageKey(id), BigInt(u.count))
          .set(apiKeyLastUseKey(id), { at: new Date(u.lastAtMs).toISOString(), ip: u.lastIp })
          .commit();
      }
    },
  };
  return service;
}
