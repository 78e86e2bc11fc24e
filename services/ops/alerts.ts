/**
 * Security alerts delivered to `ALERT_WEBHOOK_URL`: signed (HMAC-SHA256 over
 * timestamp and body), deduplicated per kind and key per window across
 * instances, retried with backoff behind a circuit breaker, and never awaited
 * by the request that raised them.
 *
 * @module
 */
import CircuitBreaker from "opossum";
import type { Clock } from "../core/clock.ts";
import { hmacSha256, randomId } from "../core/crypto.ts";
import { alertDedupKey } from "../core/kv_keys.ts";
import type { Logger } from "../core/logger.ts";
import type { BreakerState, Metrics } from "./metrics.ts";

/** How bad an alert is. */
export type AlertSeverity = "critical" | "high" | "warning";

/** What raises an alert. */
export interface AlertInput {
  severity: AlertSeverity;
  /** The kind, e.g. `credential_stuffing`; names the runbook too. */
  type: string;
  /** What the alert is about within its kind (an IP, a user id); dedup is per type and key. */
  key: string;
  summary: string;
  /** Ids, IPs, counts, window: whatever the responder needs. */
  facts: Record<string, unknown>;
  requestIds?: readonly string[];
}

/** The JSON body a receiver gets. */
export interface AlertPayload {
  id: string;
  at: string;
  severity: AlertSeverity;
  type: string;
  key: string;
  summary: string;
  facts: Record<string, unknown>;
  request_ids: string[];
  runbook: string;
}

/** Raises alerts; `raise` returns at once, delivery happens in the background. */
export interface Alerter {
  /** Queues an alert unless one of the same type and key was raised inside the window. */
  raise(input: AlertInput): void;
  /** Waits for deliveries in flight (tests, shutdown). */
  settled(): Promise<void>;
  /** Settles, then releases the breaker's timers. */
  close(): Promise<void>;
}

/** Header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export const SIGNATURE_HEADER = "X-Bulwark-Signature";

/** Which runbook answers which alert type (docs/runbooks/); a test checks each file exists. */
export const ALERT_RUNBOOKS: Readonly<Record<string, string>> = {
  credential_stuffing: "credential-stuffing.md",
  login_failures_by_ip: "credential-stuffing.md",
  lockout_spike: "credential-stuffing.md",
  enumeration: "credential-stuffing.md",
  refresh_reuse: "leaked-jwt-secret.md",
  privilege_probing: "compromised-admin.md",
  admin_role_change: "compromised-admin.md",
  api_key_abuse: "leaked-api-key.md",
  malware_uploaded: "malware-uploaded.md",
  kill_switch: "credential-stuffing.md",
  tls_certificate_expiring: "rollback-release.md",
  audit_chain_broken: "forensics.md",
};

/** Options of {@linkcode createAlerter}. */
export interface AlerterOptions {
  /** Receiver; unset = alerts are logged only. */
  url: string | undefined;
  /** Signs each delivery; required with `url` (config enforces it). */
  secret: Uint8Array | undefined;
  kv: Deno.Kv;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** Where runbook links point. @default "docs/runbooks/" */
  runbookBase?: string;
  /** One alert per type and key per this long. @default 600000 (10 minutes) */
  dedupWindowMs?: number;
  /** Delays before the retries; its length is the retry count. @default [500, 2000, 8000] */
  retryDelaysMs?: readonly number[];
  /** Bound of one delivery. @default 5000 */
  timeoutMs?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** Signs `body` sent at `unixSeconds`: the value of {@linkcode SIGNATURE_HEADER}. */
export function signAlert(secret: Uint8Array, unixSeconds: number, body: string): string {
  const mac = hmacSha256(secret, `${unixSeconds}.${body}`);
  return `t=${unixSeconds},v1=${Uint8Array.fromBase64(mac, { alphabet: "base64url" }).toHex()}`;
}

/** Creates the alerter of one runtime. */
export function createAlerter(options: AlerterOptions): Alerter {
  const { kv, clock, logger, metrics } = options;
  const windowMs = options.dedupWindowMs ?? 600_000;
  const delays = options.retryDelaysMs ?? [500, 2000, 8000];
  const doFetch = options.fetch ?? fetch;
  const base = options.runbookBase ?? "docs/runbooks/";
  const inFlight = new Set<Promise<void>>();
  const active = new Map<string, number>();
  const timers = new Set<ReturnType<typeof setTimeout>>();

  async function post(body: string, signal: AbortSignal): Promise<void> {
    const t = Math.floor(clock.now().getTime() / 1000);
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (options.secret !== undefined) {
      headers[SIGNATURE_HEADER] = signAlert(options.secret, t, body);
    }
    const res = await doFetch(options.url!, { method: "POST", headers, body, signal });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`Alert receiver answered ${res.status}`);
  }

  const breaker = new CircuitBreaker(post, {
    // Each attempt carries its own abort timer (below), so the fetch itself stops too.
    timeout: false,
    resetTimeout: 30_000,
    errorThresholdPercentage: 50,
    volumeThreshold: 5,
    rollingPercentilesEnabled: false,
    enableSnapshots: false,
  });
  const timeoutMs = options.timeoutMs ?? 5000;
  breaker.on("open", () => logger.warn("alert webhook circuit opened"));
  metrics.gauge("breaker_state", () => [[{ breaker: "alert_webhook" }, stateValue()]]);
  metrics.gauge("alerts_active", () => {
    forgetEnded(clock.now().getTime());
    return [[{}, active.size]];
  });

  /** Drops the windows that ended: all are equally long, so the oldest come first. */
  function forgetEnded(now: number): void {
    for (const [k, until] of active) {
      if (until > now) break;
      active.delete(k);
    }
  }

  function stateValue(): number {
    const state: BreakerState = breaker.opened ? "open" : breaker.halfOpen ? "half_open" : "closed";
    return state === "open" ? 2 : state === "half_open" ? 1 : 0;
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const id = setTimeout(() => {
        timers.delete(id);
        resolve();
      }, ms);
      timers.add(id);
    });
  }

  /** True when this instance won the window for type+key (a KV check, so instances agree). */
  async function claim(type: string, key: string, now: number): Promise<boolean> {
    const dedupKey = alertDedupKey(type, key);
    const entry = await kv.get<{ until: number }>(dedupKey);
    if (entry.value !== null && entry.value.until > now) return false;
    const res = await kv.atomic().check(entry)
      .set(dedupKey, { until: now + windowMs }, { expireIn: windowMs })
      .commit();
    return res.ok;
  }

  async function deliver(input: AlertInput): Promise<void> {
    const now = clock.now();
    if (!await claim(input.type, input.key, now.getTime())) {
      metrics.alertDelivery(input.type, "deduplicated");
      return;
    }
    // Kept for the `alerts_active` gauge only; pruned here too, so an unscraped or
    // metrics-off instance does not gather one entry per type and key forever.
    if (metrics.enabled) {
      forgetEnded(now.getTime());
      active.set(`${input.type}\u0000${input.key}`, now.getTime() + windowMs);
    }
    const payload: AlertPayload = {
      id: randomId(),
      at: now.toISOString(),
      severity: input.severity,
      type: input.type,
      key: input.key,
      summary: input.summary,
      facts: input.facts,
      request_ids: [...(input.requestIds ?? [])],
      runbook: `${base}${ALERT_RUNBOOKS[input.type] ?? "README.md"}`,
    };
    logger.warn("security alert", { alert: payload });
    if (options.url === undefined) return;
    const body = JSON.stringify(payload);
    for (let attempt = 0;; attempt++) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      try {
        await breaker.fire(body, controller.signal);
        metrics.alertDelivery(input.type, "sent");
        return;
      } catch (error) {
        if (!(error instanceof Error)) throw error;
        if (attempt >= delays.length) {
          metrics.alertDelivery(input.type, "failed");
          logger.error("alert delivery failed", {
            alert_id: payload.id,
            type: input.type,
            attempts: attempt + 1,
            error: error.message,
          });
          return;
        }
        await sleep(delays[attempt]!);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  return {
    raise(input) {
      const task = deliver(input).catch((error: unknown) => {
        // Background work has no caller to throw to: the failure is counted and logged.
        metrics.alertDelivery(input.type, "dropped");
        logger.error("alert failed", {
          type: input.type,
          error: error instanceof Error ? error.message : String(error),
        });
      }).finally(() => inFlight.delete(task));
      inFlight.add(task);
    },
    async settled() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    async close() {
      await this.settled();
      for (const id of timers) clearTimeout(id);
      breaker.shutdown();
    },
  };
}
