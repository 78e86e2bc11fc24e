import type { AuditEventType } from "./audit_events.ts";
import type { Clock } from "./clock.ts";
import { auditByUserKey, auditKey } from "./kv_keys.ts";
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
  userId?: string | undefined;
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
        details: input.details ?? {},
      };
      const op = deps.kv.atomic().set(auditKey(event.id), event, { expireIn: retentionMs });
      if (event.user_id !== undefined) {
        op.set(auditByUserKey(event.user_id, event.id), event.id, { expireIn: retentionMs });
      }
      await op.commit();
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
