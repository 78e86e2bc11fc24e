/**
 * Reading the audit trail (`GET /admin/audit`): newest first, through the
 * per-user and per-type indexes, bounded by time through the ids' time prefix.
 *
 * @module
 */
import type { AuditEvent } from "./audit.ts";
import type { AuditEventType } from "./audit_events.ts";
import { getManyChunked } from "./kv.ts";
import { auditByTypePrefix, auditByUserPrefix, auditKey, auditPrefix } from "./kv_keys.ts";
import { type Page, scanPage } from "./pagination.ts";

/** Filters of {@linkcode AuditLog.list}; all optional but `limit`. */
export interface AuditQuery {
  type?: AuditEventType | undefined;
  /** Events by this user or about them. */
  userId?: string | undefined;
  /** Inclusive. */
  since?: Date | undefined;
  /** Inclusive. */
  until?: Date | undefined;
  cursor?: string | undefined;
  limit: number;
}

/** Queries over stored audit events. */
export interface AuditLog {
  /** @throws {ValidationError} for a malformed cursor */
  list(query: AuditQuery): Promise<Page<AuditEvent>>;
}

/** The id prefix of events at `time` (ids start with 10 base36 digits of milliseconds). */
function timePrefix(time: Date): string {
  return Math.max(0, time.getTime()).toString(36).padStart(10, "0");
}

/** Creates the audit query service. */
export function createAuditLog(deps: { kv: Deno.Kv }): AuditLog {
  const { kv } = deps;
  return {
    async list(query) {
      const prefix: Deno.KvKey = query.userId !== undefined
        ? auditByUserPrefix(query.userId)
        : query.type !== undefined
        ? auditByTypePrefix(query.type)
        : auditPrefix();
      const range: { start?: Deno.KvKey; end?: Deno.KvKey } = {};
      if (query.since !== undefined) range.start = [...prefix, timePrefix(query.since)];
      if (query.until !== undefined) {
        range.end = [...prefix, timePrefix(new Date(query.until.getTime() + 1))];
      }
      const wanted = (event: AuditEvent) => query.type === undefined || event.type === query.type;
      return await scanPage<AuditEvent | string, AuditEvent>(kv, {
        prefix,
        range,
        tailLength: 1,
        reverse: true,
        cursor: query.cursor,
        limit: query.limit,
        resolve: async (entries) => {
          if (prefix.length === 1) {
            return entries.map((e) => wanted(e.value as AuditEvent) ? e.value as AuditEvent : null);
          }
          const records = await getManyChunked<AuditEvent>(
            kv,
            entries.map((e) => auditKey(e.value as string)),
          );
          return records.map((r) => r.value !== null && wanted(r.value) ? r.value : null);
        },
      });
    },
  };
}
