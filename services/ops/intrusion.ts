/**
 * Intrusion detection: declarative rules over the audit trail. A rule counts
 * one audit event type (optionally one outcome and detail values) per key —
 * client IP, its /24 or /64 network, user, API key, or everything — in fixed
 * windows, with counters in KV so every instance adds to the same count. The
 * instance whose event crosses the threshold claims the window (a KV check)
 * and acts once: an alert, and/or a temporary block of the IP, network or user.
 *
 * @module
 */
import type { AuditEvent, AuditService } from "../core/audit.ts";
import type { AuditEventType } from "../core/audit_events.ts";
import type { Clock } from "../core/clock.ts";
import { intrusionCounterKey, userKey } from "../core/kv_keys.ts";
import { ConflictError } from "../core/errors.ts";
import { commitOrRetry, RETRY, retryOnConflict } from "../core/kv.ts";
import type { UserRecord } from "../identity/users.ts";
import type { Logger } from "../core/logger.ts";
import { ipPrefix } from "../limits/client_ip.ts";
import type { Alerter, AlertSeverity } from "./alerts.ts";
import type { BlockService } from "./blocks.ts";
import type { Metrics } from "./metrics.ts";

/** What a rule counts by. */
export type RuleKey = "ip" | "ip64" | "user" | "api_key" | "global";

/** One detection rule. */
export interface IntrusionRule {
  /** Also the alert type (and so the runbook). */
  readonly name: string;
  readonly event: AuditEventType;
  readonly outcome?: "success" | "failure" | undefined;
  /** Detail values that must match exactly (e.g. `{ reason: "unknown_email" }`). */
  readonly where?: Readonly<Record<string, string | number | boolean>> | undefined;
  readonly key: RuleKey;
  readonly threshold: number;
  readonly windowSeconds: number;
  readonly actions: readonly ("alert" | "block")[];
  /** How long a block lasts. @default 15 */
  readonly blockMinutes?: number | undefined;
  readonly severity: AlertSeverity;
  readonly summary: string;
}

/** Partial override of a default rule, or a whole new rule, from `INTRUSION_RULES`. */
export interface RuleOverride {
  enabled?: boolean | undefined;
  event?: string | undefined;
  outcome?: "success" | "failure" | undefined;
  where?: Record<string, string | number | boolean> | undefined;
  key?: RuleKey | undefined;
  threshold?: number | undefined;
  window_seconds?: number | undefined;
  actions?: ("alert" | "block")[] | undefined;
  block_minutes?: number | undefined;
  severity?: AlertSeverity | undefined;
  summary?: string | undefined;
}

/** The default rules (GUIDELINES "Security monitoring"); every one can be overridden. */
export const DEFAULT_RULES: readonly IntrusionRule[] = [
  {
    name: "credential_stuffing",
    event: "credential_stuffing_suspected",
    key: "ip",
    threshold: 1,
    windowSeconds: 600,
    actions: ["alert", "block"],
    blockMinutes: 60,
    severity: "critical",
    summary: "Credential stuffing: many accounts failing from one address",
  },
  {
    name: "login_failures_by_ip",
    event: "auth.login",
    outcome: "failure",
    key: "ip",
    threshold: 20,
    windowSeconds: 600,
    actions: ["alert", "block"],
    blockMinutes: 15,
    severity: "high",
    summary: "Many failed logins from one address",
  },
  {
    name: "enumeration",
    event: "auth.login",
    outcome: "failure",
    where: { reason: "unknown_email" },
    key: "ip64",
    threshold: 10,
    windowSeconds: 600,
    actions: ["alert"],
    severity: "high",
    summary: "Account enumeration: many unknown emails from one network",
  },
  {
    name: "lockout_spike",
    event: "auth.account_locked",
    key: "global",
    threshold: 10,
    windowSeconds: 600,
    actions: ["alert"],
    severity: "high",
    summary: "Lockout spike: many accounts locked",
  },
  {
    name: "refresh_reuse",
    event: "auth.refresh_reuse_detected",
    key: "user",
    threshold: 1,
    windowSeconds: 600,
    actions: ["alert"],
    severity: "critical",
    summary: "A spent refresh token was presented again (token theft)",
  },
  {
    name: "privilege_probing",
    event: "authz.denied",
    key: "user",
    threshold: 10,
    windowSeconds: 600,
    actions: ["alert", "block"],
    blockMinutes: 15,
    severity: "high",
    summary: "Privilege probing: repeated authorization failures by one principal",
  },
  {
    name: "api_key_abuse",
    event: "api_key.refused",
    key: "ip",
    threshold: 5,
    windowSeconds: 900,
    actions: ["alert", "block"],
    blockMinutes: 15,
    severity: "high",
    summary: "Refused API keys keep arriving from one address",
  },
  {
    name: "malware_uploaded",
    event: "upload.malware_detected",
    key: "user",
    threshold: 1,
    windowSeconds: 3600,
    actions: ["alert"],
    severity: "critical",
    summary: "An upload was refused as malware",
  },
  {
    name: "admin_role_change",
    event: "user.role_changed",
    key: "user",
    threshold: 1,
    windowSeconds: 60,
    actions: ["alert"],
    severity: "critical",
    summary: "A role changed (admin grant or last-admin change)",
  },
  {
    name: "kill_switch",
    event: "ops.lockdown_on",
    key: "global",
    threshold: 1,
    windowSeconds: 60,
    actions: ["alert"],
    severity: "critical",
    summary: "The lockdown kill switch was turned on",
  },
  {
    name: "audit_chain_broken",
    event: "ops.audit_verify_failed",
    key: "global",
    threshold: 1,
    windowSeconds: 3600,
    actions: ["alert"],
    severity: "critical",
    summary: "The audit hash chain failed verification",
  },
  {
    name: "tls_certificate_expiring",
    event: "ops.tls_certificate_expiring",
    key: "global",
    threshold: 1,
    windowSeconds: 86_400,
    actions: ["alert"],
    severity: "warning",
    summary: "The TLS certificate expires within 14 days",
  },
];

/**
 * The rules in force: the defaults with `overrides` applied by name; an
 * override naming no default is a new rule and must be complete.
 *
 * @throws {TypeError} for an incomplete new rule
 */
export function resolveRules(
  overrides: Readonly<Record<string, RuleOverride>> = {},
): IntrusionRule[] {
  const rules: IntrusionRule[] = [];
  for (const base of DEFAULT_RULES) {
    const o = overrides[base.name];
    if (o?.enabled === false) continue;
    rules.push(o === undefined ? base : merge(base, o));
  }
  for (const [name, o] of Object.entries(overrides)) {
    if (DEFAULT_RULES.some((r) => r.name === name) || o.enabled === false) continue;
    if (o.event === undefined || o.key === undefined || o.threshold === undefined) {
      throw new TypeError(`Intrusion rule "${name}" needs event, key and threshold`);
    }
    rules.push(merge({
      name,
      event: o.event as AuditEventType,
      key: o.key,
      threshold: o.threshold,
      windowSeconds: 600,
      actions: ["alert"],
      severity: "high",
      summary: `Rule ${name} triggered`,
    }, o));
  }
  return rules;
}

function merge(base: IntrusionRule, o: RuleOverride): IntrusionRule {
  return {
    ...base,
    ...(o.event === undefined ? {} : { event: o.event as AuditEventType }),
    ...(o.outcome === undefined ? {} : { outcome: o.outcome }),
    ...(o.where === undefined ? {} : { where: o.where }),
    ...(o.key === undefined ? {} : { key: o.key }),
    ...(o.threshold === undefined ? {} : { threshold: o.threshold }),
    ...(o.window_seconds === undefined ? {} : { windowSeconds: o.window_seconds }),
    ...(o.actions === undefined ? {} : { actions: o.actions }),
    ...(o.block_minutes === undefined ? {} : { blockMinutes: o.block_minutes }),
    ...(o.severity === undefined ? {} : { severity: o.severity }),
    ...(o.summary === undefined ? {} : { summary: o.summary }),
  };
}

/** Watches the audit trail; `settled()` waits for the evaluations in flight. */
export interface IntrusionDetector {
  readonly rules: readonly IntrusionRule[];
  settled(): Promise<void>;
}

/** Options of {@linkcode createIntrusionDetector}. */
export interface IntrusionOptions {
  kv: Deno.Kv;
  clock: Clock;
  logger: Logger;
  audit: AuditService;
  alerter: Alerter;
  blocks: BlockService;
  metrics: Metrics;
  rules: readonly IntrusionRule[];
}

/** Subscribes the rules to the audit trail of one runtime. */
export function createIntrusionDetector(options: IntrusionOptions): IntrusionDetector {
  const { kv, clock, logger, audit, alerter, blocks, metrics, rules } = options;
  const inFlight = new Set<Promise<void>>();
  const byType = new Map<string, IntrusionRule[]>();
  for (const rule of rules) byType.set(rule.event, [...(byType.get(rule.event) ?? []), rule]);

  function keyOf(rule: IntrusionRule, event: AuditEvent): string | null {
    switch (rule.key) {
      case "ip":
        return event.ip ?? null;
      case "ip64":
        return event.ip === undefined ? null : ipPrefix(event.ip);
      case "user":
        return event.user_id ?? null;
      case "api_key":
        return typeof event.details.key_id === "string" ? event.details.key_id : null;
      case "global":
        return "*";
    }
  }

  function matches(rule: IntrusionRule, event: AuditEvent): boolean {
    if (rule.outcome !== undefined && rule.outcome !== event.outcome) return false;
    for (const [name, value] of Object.entries(rule.where ?? {})) {
      if (event.details[name] !== value) return false;
    }
    return true;
  }

  async function evaluate(rule: IntrusionRule, key: string, event: AuditEvent): Promise<void> {
    const windowMs = rule.windowSeconds * 1000;
    const window = Math.floor(clock.now().getTime() / windowMs);
    const counter = intrusionCounterKey(rule.name, key, window);
    // Counted with an expiry on every write: a flood from many addresses leaves nothing behind.
    const count = await retryOnConflict(async (attempt) => {
      const entry = await kv.get<Deno.KvU64>(counter);
      const next = Number(entry.value?.value ?? 0n) + 1;
      const op = kv.atomic().check(entry).set(counter, new Deno.KvU64(BigInt(next)), {
        expireIn: windowMs * 2,
      });
      return (await commitOrRetry(op, attempt)) === RETRY ? RETRY : next;
    }, { exhausted: () => new ConflictError("Cannot count the intrusion rule") });
    if (count < rule.threshold) return;
    // The first instance past the threshold acts; the others see the marker.
    const marker = intrusionCounterKey(`${rule.name}#fired`, key, window);
    const claimed = await kv.atomic().check({ key: marker, versionstamp: null })
      .set(marker, true, { expireIn: windowMs * 2 }).commit();
    if (!claimed.ok) return;
    metrics.intrusionTriggered(rule.name);
    const facts = {
      rule: rule.name,
      event: rule.event,
      key_kind: rule.key,
      key,
      count,
      threshold: rule.threshold,
      window_seconds: rule.windowSeconds,
      user_id: event.user_id ?? null,
      ip: event.ip ?? null,
      // The triggering event's own facts (audit details never hold secrets).
      event_details: event.details,
    };
    let blockId: string | null = null;
    // An admin is alerted on, never blocked by a rule: anyone holding one of their narrow
    // credentials could otherwise lock the last admin out (only the CLI could undo it).
    const adminTarget = rule.key === "user" &&
      (await kv.get<UserRecord>(userKey(key))).value?.role === "admin";
    if (
      rule.actions.includes("block") && rule.key !== "global" && rule.key !== "api_key" &&
      !adminTarget
    ) {
      const block = await blocks.add({
        ...(rule.key === "ip"
          ? { ip: key }
          : rule.key === "ip64"
          ? { cidr: key }
          : { userId: key }),
        minutes: rule.blockMinutes ?? 15,
        reason: rule.summary,
        createdBy: `rule:${rule.name}`,
      });
      blockId = block.id;
    }
    await audit.record({
      type: "ops.intrusion_detected",
      outcome: "failure",
      userId: rule.key === "user" ? key : undefined,
      details: { ...facts, block_id: blockId },
    });
    if (rule.actions.includes("alert")) {
      alerter.raise({
        severity: rule.severity,
        type: rule.name,
        key,
        summary: rule.summary,
        facts: { ...facts, block_id: blockId },
        requestIds: event.request_id === undefined ? [] : [event.request_id],
      });
    }
  }

  if (rules.length > 0) {
    audit.subscribe((event) => {
      for (const rule of byType.get(event.type) ?? []) {
        if (!matches(rule, event)) continue;
        const key = keyOf(rule, event);
        if (key === null) continue;
        const task = evaluate(rule, key, event).catch((error: unknown) => {
          // Background work: logged so a broken store shows, never thrown at the request.
          logger.error("intrusion rule failed", {
            rule: rule.name,
            error: error instanceof Error ? error.message : String(error),
          });
        }).finally(() => inFlight.delete(task));
        inFlight.add(task);
      }
    });
  }

  return {
    rules,
    async settled() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
