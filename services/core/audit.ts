import type { AuditEventType } from "./audit_events.ts";
import type { Clock } from "./clock.ts";
import { hmacSha256, randomId, sha256Hex } from "./crypto.ts";
import { auditByUserKey, auditCheckpointKey, auditKey } from "./kv_keys.ts";
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
  /** Hash chain (tamper evidence): the writing instance's chain id. */
  chain: string;
  /** Position in the chain, from 0 without gaps. */
  seq: number;
  /** `hash` of the record before this one in the chain ("" for the first). */
  prev: string;
  /** SHA-256 (hex) over every other field, see {@linkcode auditRecordHash}. */
  hash: string;
}

/** What a caller records. */
export interface AuditInput {
  type: AuditEventType;
  outcome: "success" | "failure";
  userId?: string | undefined;
  meta?: RequestMeta | undefined;
  details?: Record<string, unknown>;
}

/** A signed statement "chain C had hash H at seq N", stored beside the records. */
export interface AuditCheckpoint {
  chain: string;
  seq: number;
  hash: string;
  at: string;
  /** HMAC-SHA256 (base64url) with `AUDIT_SIGNING_KEY`; null when no key is configured. */
  sig: string | null;
}

/** Told about every committed event (metrics, intrusion rules); must not throw or block. */
export type AuditListener = (event: AuditEvent) => void;

/** Writes the audit trail: a hash-chained KV record plus one JSON log line per event. */
export interface AuditService {
  record(input: AuditInput): Promise<AuditEvent>;
  /** Adds a listener called after each commit. */
  subscribe(listener: AuditListener): void;
  /** Writes a signed checkpoint of the chain's head now (shutdown, periodic). */
  checkpoint(): Promise<void>;
}

/** Dependencies of {@linkcode createAuditService}. */
export interface AuditDeps {
  kv: Deno.Kv;
  clock: Clock;
  logger: Logger;
  /** Retention of audit records. @default 365 */
  retentionDays?: number;
  /** Key signing checkpoints (`AUDIT_SIGNING_KEY`); without it checkpoints are unsigned. */
  signingKey?: Uint8Array | undefined;
  /** A checkpoint every this many records of a chain. @default 100 */
  checkpointEvery?: number;
}

/** The canonical hash of a record: every field but `hash`, in a fixed order. */
export function auditRecordHash(event: Omit<AuditEvent, "hash">): string {
  return sha256Hex(JSON.stringify([
    event.chain,
    event.seq,
    event.prev,
    event.id,
    event.at,
    event.type,
    event.outcome,
    event.user_id ?? null,
    event.ip ?? null,
    event.request_id ?? null,
    event.details,
  ]));
}

/** The signature of a checkpoint under `key`. */
export function checkpointSignature(
  key: Uint8Array,
  cp: Omit<AuditCheckpoint, "sig">,
): string {
  return hmacSha256(key, `bulwark-audit-checkpoint.${cp.chain}.${cp.seq}.${cp.hash}.${cp.at}`);
}

/**
 * Creates the audit service. Each instance writes its own hash chain (a random
 * chain id): the hash and link are computed synchronously when `record` is
 * called, so the chain order is the call order even when commits overlap.
 * The first record of a chain and every `checkpointEvery`-th get a signed
 * checkpoint, so a forged chain, an edited record or a cut tail is detected
 * by `audit verify` (`services/ops/audit_log.ts`).
 */
export function createAuditService(deps: AuditDeps): AuditService {
  const retentionMs = (deps.retentionDays ?? 365) * 86_400_000;
  const every = deps.checkpointEvery ?? 100;
  const chain = randomId();
  const listeners: AuditListener[] = [];
  let sequence = 0;
  let head: { seq: number; hash: string } | null = null;
  let lastCheckpointSeq = -1;

  function signed(seq: number, hash: string, at: string): AuditCheckpoint {
    const body = { chain, seq, hash, at };
    const sig = deps.signingKey === undefined ? null : checkpointSignature(deps.signingKey, body);
    return { ...body, sig };
  }

  return {
    subscribe(listener) {
      listeners.push(listener);
    },

    async checkpoint() {
      if (head === null || head.seq === lastCheckpointSeq) return;
      const cp = signed(head.seq, head.hash, deps.clock.now().toISOString());
      lastCheckpointSeq = cp.seq;
      await deps.kv.set(auditCheckpointKey(chain, cp.seq), cp, { expireIn: retentionMs });
    },

    async record(input) {
      const now = deps.clock.now();
      const seq = head === null ? 0 : head.seq + 1;
      const unhashed: Omit<AuditEvent, "hash"> = {
        id: sortableId(now, sequence++),
        at: now.toISOString(),
        type: input.type,
        outcome: input.outcome,
        ...(input.userId === undefined ? {} : { user_id: input.userId }),
        ...(input.meta === undefined
          ? {}
          : { ip: input.meta.ip, request_id: input.meta.requestId }),
        details: input.details ?? {},
        chain,
        seq,
        prev: head?.hash ?? "",
      };
      const event: AuditEvent = { ...unhashed, hash: auditRecordHash(unhashed) };
      head = { seq, hash: event.hash };
      const op = deps.kv.atomic().set(auditKey(event.id), event, { expireIn: retentionMs });
      if (event.user_id !== undefined) {
        op.set(auditByUserKey(event.user_id, event.id), event.id, { expireIn: retentionMs });
      }
      if (seq === 0 || seq % every === 0) {
        lastCheckpointSeq = seq;
        op.set(auditCheckpointKey(chain, seq), signed(seq, event.hash, event.at), {
          expireIn: retentionMs,
        });
      }
      await op.commit();
      deps.logger.info("audit", { audit: event });
      for (const listener of listeners) {
        try {
          listener(event);
        } catch (error) {
          // A listener's fault must not fail the audited action; it is logged, not hidden.
          deps.logger.error("audit listener failed", {
            type: event.type,
            error: error instanceof Error ? error.message : String(error),
          });
        }
      }
      return event;
    },
  };
}

/** The id prefix of events at `time`: ids sort by time, so this bounds a range scan. */
export function auditIdAt(time: Date): string {
  return time.getTime().toString(36).padStart(10, "0");
}

/**
 * Time-ordered id: 10 base36 digits of milliseconds, a per-instance sequence
 * (events of one millisecond keep their order), then 48 random bits.
 */
function sortableId(now: Date, sequence: number): string {
  const random = crypto.getRandomValues(new Uint8Array(6));
  return auditIdAt(now) +
    (sequence % 36 ** 6).toString(36).padStart(6, "0") +
    Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("");
}
