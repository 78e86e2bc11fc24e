import type { AuditEventType } from "./audit_events.ts";
import type { Clock } from "./clock.ts";
import { hmacSha256, randomId, sha256Hex } from "./crypto.ts";
import { ConflictError } from "./errors.ts";
import { commitOrRetry, RETRY, retryOnConflict, tryCommit } from "./kv.ts";
import { createKeyedQueue } from "./keyed_queue.ts";
import {
  auditByTypeKey,
  auditByUserKey,
  auditCheckpointKey,
  auditKey,
  auditSampleKey,
} from "./kv_keys.ts";
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
   * left out since the last stored one; the rest are counted, logged, shown to
   * listeners (metrics, intrusion rules) and not stored, so a brute-force run
   * cannot grow the year-long trail by a record per request (security review
   * #10: audit growth).
   */
  sample?: { key: string; windowMs?: number };
}

interface SampleWindow {
  until_ms: number;
  repeats: number;
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
  const chainQueue = createKeyedQueue();

  function signed(seq: number, hash: string, at: string): AuditCheckpoint {
    const body = { chain, seq, hash, at };
    const sig = deps.signingKey === undefined ? null : checkpointSignature(deps.signingKey, body);
    return { ...body, sig };
  }

  function tell(event: AuditEvent): void {
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
  }

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
    try {
      return await retryOnConflict(async (attempt) => {
        const entry = await deps.kv.get<SampleWindow>(key);
        const open = entry.value !== null && entry.value.until_ms > now;
        const next: SampleWindow = open
          ? { ...entry.value!, repeats: entry.value!.repeats + 1 }
          : { until_ms: now + windowMs, repeats: 0 };
        // The marker outlives its window so the next one can report the last one's repeats.
        const op = deps.kv.atomic().check(entry).set(key, next, {
          expireIn: 2 * windowMs + 60_000,
        });
        if ((await commitOrRetry(op, attempt)) === RETRY) return RETRY;
        return open ? null : entry.value?.repeats ?? 0;
      }, { exhausted: () => new ConflictError("Cannot sample the audit event") });
    } catch (error) {
      // Under this much contention the event is stored rather than lost.
      if (error instanceof ConflictError) return 0;
      throw error;
    }
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

    record(input) {
      // One record of this instance's chain at a time, so a record is linked to the
      // previous one only once that one is stored (no false gap after a failed write).
      return chainQueue.run("chain", () => recordNow(input));
    },
  };

  async function recordNow(input: AuditInput): Promise<AuditEvent> {
    const now = deps.clock.now();
    let details: Record<string, unknown> = {
      ...input.details,
      ...(input.targetUserId === undefined ? {} : { target_user_id: input.targetUserId }),
    };
    const fields = {
      id: sortableId(now, sequence++),
      at: now.toISOString(),
      type: input.type,
      outcome: input.outcome,
      ...(input.userId === undefined ? {} : { user_id: input.userId }),
      ...(input.meta === undefined ? {} : { ip: input.meta.ip, request_id: input.meta.requestId }),
    };
    if (input.sample !== undefined) {
      const repeats = await sampleWindow(input.type, input.sample, now.getTime());
      if (repeats === null) {
        // Counted in its window, not stored: outside the chain, so it has no link.
        const observed: AuditEvent = {
          ...fields,
          details,
          chain: "",
          seq: -1,
          prev: "",
          hash: "",
        };
        deps.logger.info("audit", { audit: observed, stored: false });
        tell(observed);
        return observed;
      }
      if (repeats > 0) details = { ...details, repeats_before: repeats };
    }
    // The link is computed synchronously, so the chain order is the call order.
    const seq = head === null ? 0 : head.seq + 1;
    const unhashed: Omit<AuditEvent, "hash"> = {
      ...fields,
      details,
      chain,
      seq,
      prev: head?.hash ?? "",
    };
    const event: AuditEvent = { ...unhashed, hash: auditRecordHash(unhashed) };
    const expireIn = retentionMs;
    const op = deps.kv.atomic()
      .set(auditKey(event.id), event, { expireIn })
      .set(auditByTypeKey(event.type, event.id), event.id, { expireIn });
    for (const userId of new Set([event.user_id, input.targetUserId])) {
      if (userId !== undefined) op.set(auditByUserKey(userId, event.id), event.id, { expireIn });
    }
    const checkpointed = seq === 0 || seq % every === 0;
    if (checkpointed) {
      op.set(auditCheckpointKey(chain, seq), signed(seq, event.hash, event.at), { expireIn });
    }
    // No checks: a failed commit can only be a busy store (another process writing).
    await retryOnConflict(async (n) => (await tryCommit(op, n)) ?? RETRY, {
      exhausted: () => new Error("Cannot record audit event: the store stayed busy"),
    });
    head = { seq, hash: event.hash };
    if (checkpointed) lastCheckpointSeq = seq;
    deps.logger.info("audit", { audit: event });
    tell(event);
    return event;
  }
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
