import type { AuditEventType } from "./audit_events.ts";
import type { Clock } from "./clock.ts";
import { auditByTypeKey, auditByUserKey, auditKey, auditSampleKey } from "./kv_keys.ts";
import { ConflictError } from "./errors.ts";
import { commitOrRetry, RETRY, retryOnConflict, tryCommit } from "./kv.ts";

interface SampleWindow {
  until_ms: number;
  repeats: number;
}
import type { Logger } from "./logger.ts";

/** Where and by whom an audited action was requested. */
export interface RequestMeta {
  ip: string;
  userAgent: string;
  requestId: string;
}

/** One audit event as stored and returned by the admin API. */
export interface AuditEvent {
  id: string;
  at: string;
  type: AuditEventType;
  outcome: "success" | "failure";
  user_id?: string;
  ip?: string;
  request_id?: string;
  details: Record<string, unknown>;
}

/** What a caller records. */
export interface AuditInput {
  type: AuditEventType;
  outcome: "success" | "failure";
  /** Who acted. */
  userId?: string | undefined;
  /**
   * The user acted upon, when not the actor (an admin's change, a moderator's edit):
   * stored as `details.target_user_id` and indexed, so `?user_id=` finds it too.
   */
  targetUserId?: string | undefined;
  meta?: RequestMeta | undefined;
  details?: Record<string, unknown>;
  /**
   * Aggregates repeats: of the events with this type and `key`, one per
   * `windowMs` is stored, carrying in `details.repeats_before` how many were
   * left out since the last stored one; the rest are counted, logged and not
   * stored, so a brute-force run cannot grow the year-long trail by a record per
   * request (security review #10: audit growth).
   */
  sample?: { key: string; windowMs?: number };
}

/** Writes the audit trail: a KV record plus one JSON log line per event. */
export interface AuditService {
  record(input: AuditInput): Promise<AuditEvent>;
}

/** Dependencies of {@linkcode createAuditService}. */
export interface AuditDeps {
  kv: Deno.Kv;
  clock: Clock;
  logger: Logger;
  /** Retention of audit records. @default 365 */
  retentionDays?: number;
}

/** Creates the audit service. */
export function createAuditService(deps: AuditDeps): AuditService {
  const retentionMs = (deps.retentionDays ?? 365) * 86_400_000;
  let sequence = 0;

  /**
   * Opens a new sampling window and returns the repeats the last one left out,
   * or counts this event into the open window and returns null (not stored).
   */
  async function sampleWindow(
    type: AuditEventType,
    sample: { key: string; windowMs?: number },
    now: number,
  ): Promise<number | null> {
    const windowMs = sample.windowMs ?? 60_000;
    const key = auditSampleKey(type, sample.key);
    return await retryOnConflict(async (attempt) => {
      const entry = await deps.kv.get<SampleWindow>(key);
      const open = entry.value !== null && entry.value.until_ms > now;
      const next: SampleWindow = open
        ? { ...entry.value!, repeats: entry.value!.repeats + 1 }
        : { until_ms: now + windowMs, repeats: 0 };
      // The marker outlives its window so the next one can report the last one's repeats.
      const op = deps.kv.atomic().check(entry).set(key, next, { expireIn: 2 * windowMs + 60_000 });
      if ((await commitOrRetry(op, attempt)) === RETRY) return RETRY;
      return open ? null : entry.value?.repeats ?? 0;
    }, {
      // Under this much contention the event is stored rather than lost.
      exhausted: () => new ConflictError("Cannot sample the audit event: too many writers"),
    }).catch((error) => {
      if (error instanceof ConflictError) return 0;
      throw error;
    });
  }

  return {
    async record(input) {
      const now = deps.clock.now();
      const event: AuditEvent = {
        id: sortableId(now, sequence++),
        at: now.toISOString(),
        type: input.type,
        outcome: input.outcome,
        ...(input.userId === undefined ? {} : { user_id: input.userId }),
        ...(input.meta === undefined
          ? {}
          : { ip: input.meta.ip, request_id: input.meta.requestId }),
        details: {
          ...input.details,
          ...(input.targetUserId === undefined ? {} : { target_user_id: input.targetUserId }),
        },
      };
      if (input.sample !== undefined) {
        const repeats = await sampleWindow(input.type, input.sample, now.getTime());
        if (repeats === null) {
          deps.logger.info("audit", { audit: event, stored: false });
          return event;
        }
        if (repeats > 0) event.details = { ...event.details, repeats_before: repeats };
      }
      const expireIn = retentionMs;
      const op = deps.kv.atomic()
        .set(auditKey(event.id), event, { expireIn })
        .set(auditByTypeKey(event.type, event.id), event.id, { expireIn });
      for (const userId of new Set([event.user_id, input.targetUserId])) {
        if (userId !== undefined) op.set(auditByUserKey(userId, event.id), event.id, { expireIn });
      }
      // No checks: a failed commit can only be a busy store (another process writing).
      await retryOnConflict(async (n) => (await tryCommit(op, n)) ?? RETRY, {
        exhausted: () => new Error("Cannot record audit event: the store stayed busy"),
      });
      deps.logger.info("audit", { audit: event });
      return event;
    },
  };
}

/**
 * Time-ordered id: 10 base36 digits of milliseconds, a per-instance sequence
 * (events of one millisecond keep their order), then 48 random bits.
 */
function sortableId(now: Date, sequence: number): string {
  const random = crypto.getRandomValues(new Uint8Array(6));
  return now.getTime().toString(36).padStart(10, "0") +
    (sequence % 36 ** 6).toString(36).padStart(6, "0") +
    Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("");
}
