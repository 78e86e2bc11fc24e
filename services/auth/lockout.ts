import type { AuditEventType } from "../core/audit_events.ts";
import { commitOrRetry, RETRY, retryOnConflict } from "../core/kv.ts";
import { sha256 } from "../core/crypto.ts";
import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { Clock } from "../core/clock.ts";
import { AccountLockedError, LoginThrottledError } from "../core/errors.ts";
import {
  deviceFailuresKey,
  deviceFailuresPrefix,
  loginBlockKey,
  loginFailuresByIpKey,
  loginFailuresKey,
} from "../core/kv_keys.ts";
import { clientBucketKey } from "../limits/rate_policy.ts";

/**
 * Who is guessing: an account identifier (a normalized email, known or not) and,
 * for a client that proved with a device cookie that it logged in to that
 * account before, its device id.
 */
export interface LoginSubject {
  readonly account: string;
  /** A trusted device (OWASP device cookies), or null for every other client. */
  readonly deviceId: string | null;
}

/**
 * Progressive delays and lockout per account identifier (known or not). Failures
 * of untrusted clients lock out untrusted clients only; a trusted device has its
 * own failure budget that nobody else's failures spend (security review #10,
 * finding 3: anyone could lock any account).
 */
export interface LockoutService {
  /**
   * Reserves one login attempt for `subject`. Concurrent attempts race for the
   * reservation, so a burst cannot run more password checks than the policy allows.
   *
   * @throws {AccountLockedError} while the account (or this device) is locked (423)
   * @throws {LoginThrottledError} while the progressive delay runs (429)
   */
  begin(subject: LoginSubject, meta: RequestMeta): Promise<void>;
  /** Counts a failed attempt; the threshold-th consecutive one locks. */
  recordFailure(subject: LoginSubject, meta: RequestMeta): Promise<void>;
  /** A success resets the count. */
  recordSuccess(subject: LoginSubject): Promise<void>;
  /** Clears every count and lock of the account, its devices' included (reset, admin unlock). */
  clear(account: string): Promise<void>;
  /** Locks `account` for `ms` whatever its count (operator or intrusion-rule block). */
  lockFor(account: string, ms: number): Promise<void>;
  /** Lifts what `lockFor` set, leaving failure counts and their locks alone. */
  unblock(account: string): Promise<void>;
}

/** Options of {@linkcode createLockoutService}. */
export interface LockoutDeps {
  kv: Deno.Kv;
  clock: Clock;
  audit: AuditService;
  /** Consecutive failures that lock the account (OWASP ASVS 2.2.1). @default 5 */
  maxFailures?: number;
  /** Consecutive failures that lock one trusted device. @default 5 */
  maxDeviceFailures?: number;
  /** Lock duration. @default 15 minutes */
  lockoutMs?: number;
  /** Delay after the first failure; doubles with each further one. @default 1000 */
  baseDelayMs?: number;
  /** Distinct failing accounts from one IP that raise `credential_stuffing_suspected`. @default 10 */
  stuffingThreshold?: number;
  /** Window for that count. @default 10 minutes */
  stuffingWindowMs?: number;
}

interface FailureState {
  failures: number;
  /** No attempt may start before this (progressive delay, or the in-flight reservation). */
  next_attempt_at_ms: number;
  locked_until_ms: number;
  /** Failure count for which a throttle refusal was already audited (sampling). */
  throttle_audited_at_failures: number;
  lock_audited: boolean;
}

interface IpFailures {
  window_start_ms: number;
  accounts: string[];
  alerted: boolean;
}

const EMPTY: FailureState = {
  failures: 0,
  next_attempt_at_ms: 0,
  locked_until_ms: 0,
  throttle_audited_at_failures: -1,
  lock_audited: false,
};

/** Longest progressive delay between failed logins: 5 minutes. */
export const MAX_DELAY_MS = 5 * 60_000;

/** Creates the lockout service. */
export function createLockoutService(deps: LockoutDeps): LockoutService {
  const { kv, clock, audit } = deps;
  const maxFailures = deps.maxFailures ?? 5;
  const maxDeviceFailures = deps.maxDeviceFailures ?? 5;
  const keyOf = (s: LoginSubject): Deno.KvKey =>
    s.deviceId === null ? loginFailuresKey(s.account) : deviceFailuresKey(s.account, s.deviceId);
  const thresholdOf = (s: LoginSubject) => s.deviceId === null ? maxFailures : maxDeviceFailures;
  const lockoutMs = deps.lockoutMs ?? 15 * 60_000;
  const baseDelayMs = deps.baseDelayMs ?? 1000;
  const stuffingThreshold = deps.stuffingThreshold ?? 10;
  const stuffingWindowMs = deps.stuffingWindowMs ?? 10 * 60_000;

  function delayAfter(failures: number): number {
    // Capped (security review #10): with a high LOCKOUT_THRESHOLD the doubling would
    // otherwise pass any sane wait and overflow the record's expireIn.
    return failures <= 0
      ? 0
      : Math.min(MAX_DELAY_MS, baseDelayMs * 2 ** Math.min(failures - 1, 30));
  }

  /** A lock that has run out starts the count afresh. */
  function current(state: FailureState | null, now: number): FailureState {
    if (state === null) return EMPTY;
    if (state.locked_until_ms !== 0 && state.locked_until_ms <= now) return EMPTY;
    return state;
  }

  async function update(
    subject: LoginSubject,
    change: (state: FailureState, now: number) => FailureState | null,
  ): Promise<void> {
    const key = keyOf(subject);
    const expireIn = lockoutMs + delayAfter(thresholdOf(subject));
    await retryOnConflict(async (attempt) => {
      const entry = await kv.get<FailureState>(key);
      const now = clock.now().getTime();
      const next = change(current(entry.value, now), now);
      const op = kv.atomic().check(entry);
      if (next === null) op.delete(key);
      else op.set(key, next, { expireIn });
      return await commitOrRetry(op, attempt);
    }, {
      // Attempts that keep colliding are a burst: answer like the progressive delay would.
      exhausted: () =>
        new LoginThrottledError("Too many concurrent login attempts", { retryAfter: 1 }),
    });
  }

  return {
    async begin(subject, meta) {
      const block = (await kv.get<{ until_ms: number }>(loginBlockKey(subject.account))).value;
      const now = clock.now().getTime();
      if (block !== null && block.until_ms > now) {
        throw new AccountLockedError("The account is temporarily locked", {
          retryAfter: (block.until_ms - now) / 1000,
        });
      }
      let refusal: AccountLockedError | LoginThrottledError | null = null;
      let auditType: AuditEventType | null = null;
      await update(subject, (state, now) => {
        refusal = null;
        auditType = null;
        if (state.locked_until_ms > now) {
          refusal = new AccountLockedError("The account is temporarily locked", {
            retryAfter: (state.locked_until_ms - now) / 1000,
          });
          if (state.lock_audited) return state;
          auditType = "auth.account_locked";
          return { ...state, lock_audited: true };
        }
        if (state.next_attempt_at_ms > now) {
          refusal = new LoginThrottledError("Too many failed logins; wait before trying again", {
            retryAfter: (state.next_attempt_at_ms - now) / 1000,
          });
          if (state.throttle_audited_at_failures === state.failures) return state;
          auditType = "auth.login_throttled";
          return { ...state, throttle_audited_at_failures: state.failures };
        }
        // Reserve the attempt as if it will fail; a success deletes the record.
        return { ...state, next_attempt_at_ms: now + delayAfter(state.failures + 1) };
      });
      if (refusal === null) return;
      if (auditType !== null) {
        await audit.record({
          type: auditType,
          outcome: "failure",
          meta,
          details: { account: digest(subject.account), trusted_device: subject.deviceId !== null },
        });
      }
      throw refusal;
    },

    async recordFailure(subject, meta) {
      let locked = false;
      await update(subject, (state, now) => {
        const failures = state.failures + 1;
        locked = failures >= thresholdOf(subject);
        return {
          ...state,
          failures,
          next_attempt_at_ms: now + delayAfter(failures),
          locked_until_ms: locked ? now + lockoutMs : 0,
          lock_audited: locked,
        };
      });
      if (locked) {
        await audit.record({
          type: "auth.account_locked",
          outcome: "failure",
          meta,
          details: {
            account: digest(subject.account),
            minutes: lockoutMs / 60_000,
            trusted_device: subject.deviceId !== null,
          },
        });
      }
      await trackIp(subject.account, meta);
    },

    async recordSuccess(subject) {
      await update(subject, () => null);
    },

    async clear(account) {
      const op = kv.atomic().delete(loginFailuresKey(account)).delete(loginBlockKey(account));
      for await (const e of kv.list({ prefix: deviceFailuresPrefix(account) })) op.delete(e.key);
      await op.commit();
    },

    async unblock(account) {
      await kv.delete(loginBlockKey(account));
    },

    async lockFor(account, ms) {
      const now = clock.now().getTime();
      // A key of its own, checked for every login: a trusted device's budget and a
      // success that resets the failure count leave it alone. Audited by whoever set it.
      await kv.set(loginBlockKey(account), { until_ms: now + ms }, { expireIn: ms });
    },
  };

  /** Many failing accounts from one address look like credential stuffing. */
  async function trackIp(account: string, meta: RequestMeta): Promise<void> {
    const key = loginFailuresByIpKey(clientBucketKey(meta.ip));
    const id = digest(account);
    const alerted = await retryOnConflict(async (attempt) => {
      const entry = await kv.get<IpFailures>(key);
      const now = clock.now().getTime();
      let state = entry.value;
      if (state === null || now - state.window_start_ms > stuffingWindowMs) {
        state = { window_start_ms: now, accounts: [], alerted: false };
      }
      if (state.accounts.includes(id) || state.alerted) return 0;
      const accounts = [...state.accounts, id];
      const alert = accounts.length >= stuffingThreshold;
      const next = { ...state, accounts: alert ? [] : accounts, alerted: alert };
      const op = kv.atomic().check(entry).set(key, next, { expireIn: stuffingWindowMs });
      if ((await commitOrRetry(op, attempt)) === RETRY) return RETRY;
      return alert ? accounts.length : 0;
    }, {
      exhausted: () =>
        new LoginThrottledError("Too many concurrent login attempts", { retryAfter: 1 }),
    });
    if (alerted > 0) {
      await audit.record({
        type: "credential_stuffing_suspected",
        outcome: "failure",
        meta,
        details: { distinct_accounts: alerted, window_minutes: stuffingWindowMs / 60_000 },
      });
    }
  }
}

/** Audit records name accounts by a digest: unknown emails typed by attackers are not stored. */
function digest(account: string): string {
  return sha256(account).slice(0, 16);
}
