import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { Clock } from "../core/clock.ts";
import { LoginThrottledError } from "../core/errors.ts";
import { commitOrRetry, RETRY, retryOnConflict } from "../core/kv.ts";
import { mailBudgetKey } from "../core/kv_keys.ts";

/** Which mails share a budget. */
export type MailPurpose = "password_reset" | "email_verification";

/** Limits how often one account is mailed, so a public endpoint cannot flood its inbox. */
export interface MailBudget {
  /**
   * Takes one mail from the account's budget; false when it is spent, and the
   * mail that will not be sent is audited (`mail.suppressed`).
   */
  take(purpose: MailPurpose, userId: string, meta: RequestMeta): Promise<boolean>;
}

/** Dependencies of {@linkcode createMailBudget}. */
export interface MailBudgetDeps {
  kv: Deno.Kv;
  clock: Clock;
  audit: AuditService;
  /** Least time between two mails of one purpose to one account. @default 5 minutes */
  minIntervalMs?: number;
  /** Most mails of one purpose to one account per 24 hours. @default 10 */
  perDay?: number;
}

interface BudgetState {
  last_sent_ms: number;
  day_start_ms: number;
  sent_today: number;
}

const DAY_MS = 86_400_000;

/**
 * Creates the mail budget (security review #10, finding 7: reset-mail flooding):
 * one mail per account and purpose per 5 minutes and at most 10 a day.
 */
export function createMailBudget(deps: MailBudgetDeps): MailBudget {
  const minIntervalMs = deps.minIntervalMs ?? 5 * 60_000;
  const perDay = deps.perDay ?? 10;
  return {
    async take(purpose, userId, meta) {
      const key = mailBudgetKey(purpose, userId);
      const granted = await retryOnConflict(async (attempt) => {
        const entry = await deps.kv.get<BudgetState>(key);
        const now = deps.clock.now().getTime();
        const state = entry.value;
        const dayStart = state === null || now - state.day_start_ms >= DAY_MS
          ? now
          : state.day_start_ms;
        const sentToday = dayStart === state?.day_start_ms ? state.sent_today : 0;
        if (state !== null && now - state.last_sent_ms < minIntervalMs) return false;
        if (sentToday >= perDay) return false;
        const next: BudgetState = {
          last_sent_ms: now,
          day_start_ms: dayStart,
          sent_today: sentToday + 1,
        };
        const op = deps.kv.atomic().check(entry).set(key, next, { expireIn: DAY_MS });
        return (await commitOrRetry(op, attempt)) === RETRY ? RETRY : true;
      }, {
        exhausted: () => new LoginThrottledError("Too many concurrent requests", { retryAfter: 1 }),
      });
      if (!granted) {
        await deps.audit.record({
          type: "mail.suppressed",
          outcome: "failure",
          userId,
          meta,
          details: { purpose, reason: "budget" },
        });
      }
      return granted;
    },
  };
}
