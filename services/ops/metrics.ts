/**
 * Prometheus metrics of one runtime (prom-client). Each runtime owns its own
 * `Registry` — prom-client's default registry is process-global — and the
 * services it feeds see only the small {@linkcode Metrics} interface.
 * prom-client (and the Node layer it pulls in) is imported after start-up, so
 * the first `/health` does not wait for it; what is reported meanwhile is
 * kept and replayed, so no request goes uncounted.
 *
 * @module
 */
import type * as PromClient from "prom-client";
import type { AuditEvent } from "../core/audit.ts";

/** Circuit-breaker states as a gauge value: 0 closed, 1 half-open, 2 open. */
export type BreakerState = "closed" | "half_open" | "open";

const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/** One finished HTTP request, as the metrics middleware saw it. */
export interface RequestSample {
  method: string;
  /** The matched route template (`/uploads/:id`), never the raw path. */
  route: string;
  status: number;
  seconds: number;
  /** The problem code when the request failed with one. */
  code: string | null;
  /** The route's rate class (`login`, `general`, `uploads`, `none`). */
  rateClass: string;
  /** How the caller authenticated. */
  credential: "none" | "bearer" | "api_key";
  /** Why a presented API key was refused (its problem code), or null. */
  apiKeyError: string | null;
}

/** What services and middleware report; a no-op implementation turns metrics off. */
export interface Metrics {
  request(sample: RequestSample): void;
  auditEvent(event: AuditEvent): void;
  kvOperation(op: string, seconds: number): void;
  kvConflict(): void;
  alertDelivery(type: string, outcome: "sent" | "failed" | "deduplicated" | "dropped"): void;
  intrusionTriggered(rule: string): void;
  /** Registers a gauge source read at scrape time (breakers, active alerts, blocks). */
  gauge(name: GaugeName, read: () => Array<[Record<string, string>, number]>): void;
  /** The Prometheus text exposition; empty when metrics are off. */
  render(): Promise<string>;
  readonly contentType: string;
  readonly enabled: boolean;
}

/** Gauges whose values are read from their owners at scrape time. */
export type GaugeName =
  | "breaker_state"
  | "alerts_active"
  | "blocks_active"
  | "lockdown"
  | "tls_cert_expiry_seconds";

const GAUGE_HELP: Record<GaugeName, [string, string[]]> = {
  breaker_state: ["Circuit-breaker state (0 closed, 1 half-open, 2 open)", ["breaker"]],
  alerts_active: ["Alerts inside their deduplication window", []],
  blocks_active: ["Active IP, CIDR and user blocks", ["kind"]],
  lockdown: ["1 while the lockdown kill switch is on", []],
  tls_cert_expiry_seconds: ["Seconds until the served TLS certificate expires", []],
};

/** The numeric gauge value of a breaker state. */
export function breakerValue(state: BreakerState): number {
  return BREAKER_VALUE[state];
}

/** Metrics that record nothing (`METRICS_ENABLED=false`). */
export function createNoopMetrics(): Metrics {
  return {
    request() {},
    auditEvent() {},
    kvOperation() {},
    kvConflict() {},
    alertDelivery() {},
    intrusionTriggered() {},
    gauge() {},
    render: () => Promise.resolve(""),
    contentType: CONTENT_TYPE,
    enabled: false,
  };
}

/** Options of {@linkcode createMetrics}. */
export interface MetricsOptions {
  version: string;
}

/** The methods counted under their own label; any other is "OTHER". */
const KNOWN_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "OPTIONS",
]);

/** The Prometheus text format's content type (what prom-client's registry declares). */
const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Reports kept while prom-client loads; beyond this many the oldest are dropped. */
const MAX_DEFERRED = 100_000;

/**
 * Creates the metrics of one runtime on its own registry. prom-client loads in
 * the background; until it is there, reports are kept (bounded) and replayed
 * in order, and `render()` waits for it.
 */
export function createMetrics(options: MetricsOptions): Metrics {
  let real: Metrics | null = null;
  const deferred: Array<(metrics: Metrics) => void> = [];
  const ready = import("prom-client").then((prom) => {
    const metrics = buildMetrics(prom, options);
    for (const report of deferred.splice(0)) report(metrics);
    real = metrics;
  });
  function report(apply: (metrics: Metrics) => void): void {
    if (real !== null) return apply(real);
    if (deferred.length >= MAX_DEFERRED) deferred.shift();
    deferred.push(apply);
  }
  return {
    enabled: true,
    contentType: CONTENT_TYPE,
    request: (sample) => report((m) => m.request(sample)),
    auditEvent: (event) => report((m) => m.auditEvent(event)),
    kvOperation: (op, seconds) => report((m) => m.kvOperation(op, seconds)),
    kvConflict: () => report((m) => m.kvConflict()),
    alertDelivery: (type, outcome) => report((m) => m.alertDelivery(type, outcome)),
    intrusionTriggered: (rule) => report((m) => m.intrusionTriggered(rule)),
    gauge(name, read) {
      // A source, not a report: registered once prom-client is there, never dropped.
      if (real !== null) real.gauge(name, read);
      else void ready.then(() => real!.gauge(name, read));
    },
    async render() {
      await ready;
      return await real!.render();
    },
  };
}

/** The metrics over prom-client, once it is loaded. */
function buildMetrics(prom: typeof PromClient, options: MetricsOptions): Metrics {
  const { Counter, Gauge, Histogram, Registry } = prom;
  const registers = [new Registry()];
  const registry = registers[0]!;
  const p = "bulwark_";
  const requests = new Counter({
    name: `${p}http_requests_total`,
    help: "HTTP requests by route template, method and status class",
    labelNames: ["method", "route", "status"],
    registers,
  });
  const latency = new Histogram({
    name: `${p}http_request_duration_seconds`,
    help: "HTTP request latency by route template and method",
    labelNames: ["method", "route"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const logins = new Counter({
    name: `${p}logins_total`,
    help: "Login attempts by outcome and reason",
    labelNames: ["outcome", "reason"],
    registers,
  });
  const registrations = new Counter({
    name: `${p}registrations_total`,
    help: "Accounts registered",
    registers,
  });
  const refreshes = new Counter({
    name: `${p}refreshes_total`,
    help: "Token refreshes by outcome",
    labelNames: ["outcome"],
    registers,
  });
  const reuse = new Counter({
    name: `${p}refresh_reuse_detected_total`,
    help: "Spent refresh tokens presented again (session revoked)",
    registers,
  });
  const lockouts = new Counter({
    name: `${p}lockouts_total`,
    help: "Accounts locked after consecutive failures",
    registers,
  });
  const throttles = new Counter({
    name: `${p}login_throttles_total`,
    help: "Logins refused by the progressive delay",
    registers,
  });
  const rateLimited = new Counter({
    name: `${p}rate_limited_total`,
    help: "Requests refused by the rate limiter, by rate class",
    labelNames: ["class"],
    registers,
  });
  const authz = new Counter({
    name: `${p}authz_failures_total`,
    help: "Authorization refusals (403) by code",
    labelNames: ["code"],
    registers,
  });
  const keyUses = new Counter({
    name: `${p}api_key_uses_total`,
    help: "Requests authenticated with an API key",
    registers,
  });
  const keyRefusals = new Counter({
    name: `${p}api_key_refusals_total`,
    help: "API keys refused, by reason",
    labelNames: ["reason"],
    registers,
  });
  const uploads = new Counter({
    name: `${p}uploads_total`,
    help: "Uploads by outcome",
    labelNames: ["outcome"],
    registers,
  });
  const kvLatency = new Histogram({
    name: `${p}kv_operation_duration_seconds`,
    help: "Deno KV operation latency by operation",
    labelNames: ["op"],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
    registers,
  });
  const kvConflicts = new Counter({
    name: `${p}kv_conflicts_total`,
    help: "Atomic KV commits refused by a versionstamp check",
    registers,
  });
  const auditEvents = new Counter({
    name: `${p}audit_events_total`,
    help: "Audit events by type and outcome",
    labelNames: ["type", "outcome"],
    registers,
  });
  const alerts = new Counter({
    name: `${p}alerts_total`,
    help: "Alert deliveries by type and outcome",
    labelNames: ["type", "outcome"],
    registers,
  });
  const intrusion = new Counter({
    name: `${p}intrusion_rule_triggers_total`,
    help: "Intrusion-detection rules that crossed their threshold",
    labelNames: ["rule"],
    registers,
  });
  new Gauge({
    name: `${p}build_info`,
    help: "Build information (always 1)",
    labelNames: ["version", "deno"],
    registers,
  }).set({ version: options.version, deno: Deno.version.deno }, 1);
  const sources = new Map<GaugeName, Array<() => Array<[Record<string, string>, number]>>>();
  for (
    const [name, [help, labelNames]] of Object.entries(GAUGE_HELP) as [
      GaugeName,
      [string, string[]],
    ][]
  ) {
    new Gauge({
      name: `${p}${name}`,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const read of sources.get(name) ?? []) {
          for (const [labels, value] of read()) this.set(labels, value);
        }
      },
    });
  }

  return {
    enabled: true,
    contentType: registry.contentType,
    request(s) {
      const status = `${Math.floor(s.status / 100)}xx`;
      // Any token is a valid method on the wire: unknown ones share one label, so a
      // scanner cannot grow the series without bound.
      const method = KNOWN_METHODS.has(s.method) ? s.method : "OTHER";
      requests.inc({ method, route: s.route, status });
      latency.observe({ method, route: s.route }, s.seconds);
      if (s.code === "rate_limited") rateLimited.inc({ class: s.rateClass });
      if (s.status === 403 && s.code !== null) authz.inc({ code: s.code });
      if (s.credential === "api_key") keyUses.inc();
      if (s.apiKeyError !== null) keyRefusals.inc({ reason: s.apiKeyError });
      else if (s.credential === "api_key" && s.code === "insufficient_scope") {
        keyRefusals.inc({ reason: s.code });
      }
      if (s.route === "/auth/login" && s.method === "POST") {
        // Successes and wrong credentials are counted from the audit trail (with a reason);
        // refusals before the password check are counted here.
        if (s.code !== null && s.code !== "invalid_credentials") {
          logins.inc({ outcome: "refused", reason: s.code });
          if (s.code === "login_throttled") throttles.inc();
        }
      } else if (s.route === "/auth/refresh" && s.method === "POST") {
        refreshes.inc({ outcome: s.code ?? "success" });
      } else if (s.route === "/uploads" && s.method === "POST") {
        uploads.inc({ outcome: s.status === 201 ? "stored" : s.code ?? `status_${s.status}` });
      }
    },
    auditEvent(event) {
      auditEvents.inc({ type: event.type, outcome: event.outcome });
      switch (event.type) {
        case "auth.login":
          logins.inc({
            outcome: event.outcome,
            reason: event.outcome === "success" ? "ok" : String(event.details.reason ?? "unknown"),
          });
          break;
        case "user.registered":
          registrations.inc();
          break;
        case "auth.refresh_reuse_detected":
          reuse.inc();
          break;
        case "auth.account_locked":
          // Recorded once when the lock is set (details.minutes) and once for the first refusal.
          if (event.details.minutes !== undefined) lockouts.inc();
          break;
      }
    },
    kvOperation(op, seconds) {
      kvLatency.observe({ op }, seconds);
    },
    kvConflict() {
      kvConflicts.inc();
    },
    alertDelivery(type, outcome) {
      alerts.inc({ type, outcome });
    },
    intrusionTriggered(rule) {
      intrusion.inc({ rule });
    },
    gauge(name, read) {
      const list = sources.get(name) ?? [];
      list.push(read);
      sources.set(name, list);
    },
    render: () => registry.metrics(),
  };
}

/**
 * Wraps a store so every read, write and commit is timed and refused commits
 * are counted. A `Proxy` keeps the full `Deno.Kv` surface for services.
 */
export function instrumentKv(kv: Deno.Kv, metrics: Metrics): Deno.Kv {
  if (!metrics.enabled) return kv;
  function timed<A extends unknown[], R>(
    op: string,
    fn: (...args: A) => Promise<R>,
  ): (...args: A) => Promise<R> {
    return async (...args) => {
      const started = performance.now();
      try {
        return await fn(...args);
      } finally {
        metrics.kvOperation(op, (performance.now() - started) / 1000);
      }
    };
  }
  const wrapped = new Map<PropertyKey, unknown>([
    ["get", timed("get", kv.get.bind(kv))],
    ["getMany", timed("getMany", kv.getMany.bind(kv))],
    ["set", timed("set", kv.set.bind(kv))],
    ["delete", timed("delete", kv.delete.bind(kv))],
    ["atomic", () => {
      const op = kv.atomic();
      const commit = op.commit.bind(op);
      op.commit = timed("commit", async () => {
        const res = await commit();
        if (!res.ok) metrics.kvConflict();
        return res;
      });
      return op;
    }],
  ]);
  return new Proxy(kv, {
    get(target, prop) {
      if (wrapped.has(prop)) return wrapped.get(prop);
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      // Bound once, then reused: not a new function on every call through the store.
      const bound = value.bind(target);
      wrapped.set(prop, bound);
      return bound;
    },
  });
}
