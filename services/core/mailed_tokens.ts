import type { Clock } from "./clock.ts";
import { randomSecret, sha256 } from "./crypto.ts";

/** What every mailed token record holds; a purpose adds its own fields. */
export interface MailedTokenRecord {
  user_id: string;
  expires_at: string;
}

/**
 * Single-use tokens sent by mail (password reset, email verification): 32
 * random bytes, stored only as their SHA-256, one live token per user (a newer
 * one replaces the older), spent by a versionstamp-checked delete so a replay
 * — even a concurrent one — fails.
 */
export interface MailedTokens<T extends MailedTokenRecord> {
  /** A new token for `record.user_id`; null when a concurrent request for the user won. */
  issue(record: Omit<T, "expires_at">): Promise<string | null>;
  /** The live record of `token` (well-formed, known, unexpired), without spending it. */
  find(token: string): Promise<Deno.KvEntry<T> | null>;
  /** Spends a found token: true for the one commit that wins. */
  spend(found: Deno.KvEntry<T>): Promise<boolean>;
}

/** Dependencies of {@linkcode createMailedTokens}. */
export interface MailedTokensDeps {
  kv: Deno.Kv;
  clock: Clock;
  /** How long a token lives (OWASP Forgot Password Cheat Sheet: short). */
  ttlMs: number;
  /** Where a token's record lives, by the token's hash. */
  tokenKey(hash: string): Deno.KvKey;
  /** Where a user's live token hash is kept. */
  byUserKey(userId: string): Deno.KvKey;
}

/** 32 random bytes, base64url: nothing else is looked up. */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** Creates one purpose's mailed tokens. */
export function createMailedTokens<T extends MailedTokenRecord>(
  deps: MailedTokensDeps,
): MailedTokens<T> {
  const { kv, clock } = deps;
  return {
    async issue(fields) {
      const token = randomSecret();
      const hash = sha256(token);
      const now = clock.now();
      const record = { ...fields, expires_at: new Date(now.getTime() + deps.ttlMs).toISOString() };
      const expireIn = deps.ttlMs;
      const previous = await kv.get<string>(deps.byUserKey(fields.user_id));
      const op = kv.atomic()
        .check(previous)
        .set(deps.tokenKey(hash), record, { expireIn })
        .set(deps.byUserKey(fields.user_id), hash, { expireIn });
      if (previous.value !== null) op.delete(deps.tokenKey(previous.value));
      return (await op.commit()).ok ? token : null;
    },
    async find(token) {
      if (!TOKEN.test(token)) return null;
      const entry = await kv.get<T>(deps.tokenKey(sha256(token)));
      if (entry.value === null || new Date(entry.value.expires_at) <= clock.now()) return null;
      return entry as Deno.KvEntry<T>;
    },
    async spend(found) {
      const res = await kv.atomic()
        .check(found)
        .delete(found.key)
        .delete(deps.byUserKey(found.value.user_id))
        .commit();
      return res.ok;
    },
  };
}
