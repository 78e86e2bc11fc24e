/**
 * Reading the audit trail for incident response: export as JSON lines,
 * verification of the hash chains and their signed checkpoints.
 *
 * @module
 */
import {
  type AuditCheckpoint,
  type AuditEvent,
  auditIdAt,
  auditRecordHash,
  checkpointSignature,
} from "../core/audit.ts";
import { timingSafeEqual } from "../core/crypto.ts";
import { auditByUserKey, auditCheckpointsPrefix, auditKey } from "../core/kv_keys.ts";

/** Filter of {@linkcode exportAudit}. */
export interface AuditFilter {
  since: Date;
  until: Date;
  type?: string | undefined;
  userId?: string | undefined;
}

/** The events in `[since, until)` matching the filter, oldest first. */
export async function* exportAudit(kv: Deno.Kv, filter: AuditFilter): AsyncGenerator<AuditEvent> {
  const start = auditIdAt(filter.since);
  const end = auditIdAt(filter.until);
  if (filter.userId !== undefined) {
    const iter = kv.list<string>({
      start: auditByUserKey(filter.userId, start),
      end: auditByUserKey(filter.userId, end),
    });
    for await (const entry of iter) {
      const event = (await kv.get<AuditEvent>(auditKey(entry.value))).value;
      if (event !== null && (filter.type === undefined || event.type === filter.type)) yield event;
    }
    return;
  }
  for await (const entry of kv.list<AuditEvent>({ start: auditKey(start), end: auditKey(end) })) {
    if (filter.type === undefined || entry.value.type === filter.type) yield entry.value;
  }
}

/** One finding of {@linkcode verifyAudit}. */
export interface AuditProblem {
  kind: "edited" | "deleted" | "inserted" | "checkpoint" | "unchained";
  chain: string;
  seq: number | null;
  id: string | null;
  message: string;
}

/** The result of {@linkcode verifyAudit}. */
export interface AuditVerification {
  ok: boolean;
  records: number;
  chains: number;
  checkpoints: number;
  problems: AuditProblem[];
  warnings: string[];
}

/** Options of {@linkcode verifyAudit}. */
export interface VerifyOptions {
  /** `AUDIT_SIGNING_KEY`; without it signatures cannot be checked (a warning says so). */
  signingKey: Uint8Array | undefined;
  now: Date;
  /** Records older than the retention horizon may be gone at a chain's start. */
  retentionDays: number;
}

/**
 * Verifies every chain: each record's hash, each link to the record before,
 * gapless sequence numbers, and each checkpoint's signature and hash. Names
 * the chain, sequence number and record id of every break: an edited record
 * fails its hash, a deleted one leaves a gap (or a checkpoint past the last
 * record), an inserted one breaks a link, duplicates a number, or starts a
 * chain no signed checkpoint vouches for.
 */
export async function verifyAudit(kv: Deno.Kv, options: VerifyOptions): Promise<AuditVerification> {
  const chains = new Map<string, AuditEvent[]>();
  const problems: AuditProblem[] = [];
  const warnings: string[] = [];
  let records = 0;
  const unchained: AuditEvent[] = [];
  /** When the first chained record was written (records before it predate the chain). */
  let chainedSince = Infinity;
  for await (const entry of kv.list<AuditEvent>({ prefix: ["audit"] })) {
    records++;
    const event = entry.value;
    if (typeof event.chain !== "string" || typeof event.seq !== "number") {
      unchained.push(event);
      continue;
    }
    chainedSince = Math.min(chainedSince, Date.parse(event.at));
    const chain = chains.get(event.chain);
    if (chain === undefined) chains.set(event.chain, [event]);
    else chain.push(event);
  }
  // Records from before the hash chain existed are older than every chained one; an
  // unchained record newer than that was written around the chain: inserted.
  let legacy = 0;
  for (const event of unchained) {
    if (Date.parse(event.at) > chainedSince) {
      problems.push({
        kind: "unchained",
        chain: "",
        seq: null,
        id: event.id,
        message: `record ${event.id} has no place in a hash chain but postdates it: inserted`,
      });
    } else legacy++;
  }
  if (legacy > 0) warnings.push(`${legacy} records predate the hash chain and were skipped`);
  const checkpoints = new Map<string, AuditCheckpoint[]>();
  let checkpointCount = 0;
  for await (const entry of kv.list<AuditCheckpoint>({ prefix: auditCheckpointsPrefix() })) {
    checkpointCount++;
    const cp = entry.value;
    checkpoints.set(cp.chain, [...(checkpoints.get(cp.chain) ?? []), cp]);
  }
  if (options.signingKey === undefined) {
    warnings.push("AUDIT_SIGNING_KEY is not set: checkpoint signatures were not checked");
  }
  const horizon = options.now.getTime() - (options.retentionDays - 2) * 86_400_000;
  /** True when the checkpoint's signature holds (always, without a key: a warning says so). */
  const validSignature = (cp: AuditCheckpoint): boolean => {
    if (options.signingKey === undefined) return true;
    const { sig, ...body } = cp;
    return sig !== null && timingSafeEqual(checkpointSignature(options.signingKey, body), sig);
  };

  for (const [chain, list] of chains) {
    list.sort((a, b) => a.seq - b.seq || a.id.localeCompare(b.id));
    const bySeq = new Map<number, AuditEvent>();
    for (const [i, event] of list.entries()) {
      const { hash, ...rest } = event;
      if (!timingSafeEqual(auditRecordHash(rest), hash)) {
        problems.push({
          kind: "edited",
          chain,
          seq: event.seq,
          id: event.id,
          message: `record ${event.id} (seq ${event.seq}) does not match its hash: edited`,
        });
      }
      const before = list[i - 1];
      if (before !== undefined && before.seq === event.seq) {
        problems.push({
          kind: "inserted",
          chain,
          seq: event.seq,
          id: event.id,
          message: `records ${before.id} and ${event.id} both claim seq ${event.seq}: inserted`,
        });
        continue;
      }
      bySeq.set(event.seq, event);
      if (before === undefined) {
        if (event.seq > 0 && new Date(event.at).getTime() > horizon) {
          problems.push({
            kind: "deleted",
            chain,
            seq: 0,
            id: null,
            message: `records seq 0..${event.seq - 1} before ${event.id} are missing: deleted`,
          });
        }
        continue;
      }
      if (event.seq > before.seq + 1) {
        problems.push({
          kind: "deleted",
          chain,
          seq: before.seq + 1,
          id: null,
          message: `records seq ${before.seq + 1}..${
            event.seq - 1
          } between ${before.id} and ${event.id} are missing: deleted`,
        });
      } else if (event.prev !== before.hash) {
        problems.push({
          kind: "inserted",
          chain,
          seq: event.seq,
          id: event.id,
          message:
            `record ${event.id} (seq ${event.seq}) does not link to ${before.id}: inserted or replaced`,
        });
      }
    }
    const cps = checkpoints.get(chain) ?? [];
    let vouched = false;
    for (const cp of cps) {
      if (!validSignature(cp)) {
        problems.push({
          kind: "checkpoint",
          chain,
          seq: cp.seq,
          id: null,
          message: `checkpoint at seq ${cp.seq} has no valid signature: forged`,
        });
        continue;
      }
      vouched = true;
      const at = bySeq.get(cp.seq);
      if (at !== undefined && at.hash !== cp.hash) {
        problems.push({
          kind: "edited",
          chain,
          seq: cp.seq,
          id: at.id,
          message: `record ${at.id} (seq ${cp.seq}) differs from its signed checkpoint: replaced`,
        });
      }
      const last = list.at(-1)!;
      if (cp.seq > last.seq) {
        problems.push({
          kind: "deleted",
          chain,
          seq: last.seq + 1,
          id: null,
          message: `records seq ${last.seq + 1}..${cp.seq} after ${last.id} are missing: deleted`,
        });
      }
    }
    if (!vouched) {
      problems.push({
        kind: "inserted",
        chain,
        seq: null,
        id: list[0]!.id,
        message: `chain ${chain} has no valid checkpoint: its records were inserted`,
      });
    }
  }
  // A chain whose records are all gone leaves only its checkpoints: a signed one inside the
  // retention horizon vouches for records that must still exist.
  for (const [chain, cps] of checkpoints) {
    if (chains.has(chain)) continue;
    const recent = cps.filter((cp) => validSignature(cp) && Date.parse(cp.at) > horizon);
    const last = recent.reduce<AuditCheckpoint | null>(
      (a, cp) => a === null || cp.seq > a.seq ? cp : a,
      null,
    );
    if (last !== null) {
      problems.push({
        kind: "deleted",
        chain,
        seq: 0,
        id: null,
        message:
          `chain ${chain} has no records left but its checkpoint at seq ${last.seq}: deleted`,
      });
    }
  }
  return {
    ok: problems.length === 0,
    records,
    chains: chains.size,
    checkpoints: checkpointCount,
    problems,
    warnings,
  };
}
