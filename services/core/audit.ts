import type { AuditEventType } from "./audit_events.ts";
import type { Clock } from "./clock.ts";
import { RETRY, retryOnConflict, tryCommit } from "./kv.ts";
import { auditByTypeKey, auditByUserKey, auditKey } from "./kv_keys.ts";
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
