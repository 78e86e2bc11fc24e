import type { Clock } from "../core/clock.ts";
import { isStoreBusy } from "../core/kv.ts";
import {
  assertBucketName,
  assertRule,
  boundBucketKey,
  type BucketId,
  type RateLimit,
  rateRefusalAuditedKey,
} from "./rate_limiter.ts";

/** Decides which rate-limit refusals reach the audit trail. */
export interface RefusalSampler {
  /**
   * True for the first refusal of a bucket in each `rule.windowMs`, false for
   * the rest, so a flood of refused requests writes one audit event per window.
   *
   * @throws {TypeError} When the bucket name or the rule is invalid.
   */
  shouldAudit(id: BucketId, rule: RateLimit): Promise<boolean>;
}

/** Dependencies of {@linkcode createRefusalSampler}. */
export interface RefusalSamplerDeps {
  kv: Deno.Kv;
  clock: Clock;
  /**
   * Builds the KV key of a bucket's marker; gets the bounded key.
   * @default rateRefusalAuditedKey
   */
  keyFor?: (id: BucketId) => Deno.KvKey;
}

/**
 * Creates a sampler that lets one refusal per bucket per window through to the
 * audit trail. The marker stores its own end time; `expireIn` only cleans up.
 */
export function createRefusalSampler(deps: RefusalSamplerDeps): RefusalSampler {
  const { kv, clock } = deps;
  const keyFor = deps.keyFor ?? ((id: BucketId) => rateRefusalAuditedKey(id.name, id.key));
  return {
    async shouldAudit(id, rule) {
      assertBucketName(id.name);
      assertRule(rule, id.name);
      const key = keyFor({ name: id.name, key: boundBucketKey(id.key) });
      const now = clock.now().getTime();
      const entry = await kv.get<unknown>(key);
      const until = markerUntil(entry.value);
      if (until !== null && until > now) return false;
      // check(entry) is versionstamp null when absent, or the stale marker's stamp:
      // of several concurrent refusals exactly one commit wins the window.
      const op = kv.atomic()
        .check(entry)
        .set(key, { until_ms: now + rule.windowMs }, { expireIn: rule.windowMs });
      try {
        return (await op.commit()).ok;
      } catch (error) {
        if (!isStoreBusy(error)) throw error;
        // Another handle is writing; skip this sample. Nothing was stored, so the
        // next refusal of the bucket is audited instead.
        return false;
      }
    },
  };
}

function markerUntil(value: unknown): number | null {
  if (typeof value !== "object" || value === null) return null;
  const until = (value as Record<string, unknown>).until_ms;
  return typeof until === "number" && Number.isFinite(until) ? until : null;
}
