/**
 * Settings of security operations: metrics, alerts, intrusion detection, the audit trail.
 * Spread into `SETTINGS` by `../settings.ts`, whose header says how to add a setting.
 *
 * @module
 */
import { z } from "zod";
import { bool, httpUrl, positiveInt, setting } from "../declaration.ts";
import { MIN_SECRET_BYTES } from "../model.ts";

const RULE_OVERRIDE = z.strictObject({
  enabled: z.boolean().optional(),
  event: z.string().optional(),
  outcome: z.enum(["success", "failure"]).optional(),
  where: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  key: z.enum(["ip", "ip64", "user", "api_key", "global"]).optional(),
  threshold: z.number().int().positive().optional(),
  window_seconds: z.number().int().positive().max(7 * 86_400).optional(),
  actions: z.array(z.enum(["alert", "block"])).optional(),
  block_minutes: z.number().int().positive().max(30 * 24 * 60).optional(),
  severity: z.enum(["critical", "high", "warning"]).optional(),
  summary: z.string().max(200).optional(),
});

const RULES_JSON = z.string().transform((text, ctx) => {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    // A parse failure is a configuration problem, reported like any other.
    if (!(error instanceof SyntaxError)) throw error;
    ctx.addIssue({ code: "custom", message: "must be a JSON object" });
    return z.NEVER;
  }
}).pipe(z.record(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/), RULE_OVERRIDE));

function minBytes(name: string) {
  return (value: string | undefined) =>
    value !== undefined && new TextEncoder().encode(value).byteLength < MIN_SECRET_BYTES
      ? `"${name}" must be at least ${MIN_SECRET_BYTES} bytes`
      : undefined;
}

/** Settings of security operations: metrics, alerts, intrusion detection, the audit trail. */
export const OPS_SETTINGS = {
  METRICS_ENABLED: setting({
    schema: bool.default(true),
    doc: "Collect Prometheus metrics and serve `GET /metrics`.",
    show: (c) => c.metricsEnabled,
  }),
  METRICS_TOKEN: setting({
    schema: z.string().optional(),
    secret: true,
    doc:
      "Bearer token (≥ 32 bytes) a scraper sends to `GET /metrics`; without it only admins with `audit:read` may read metrics.",
    show: (c) => c.metricsToken === undefined ? "unset" : "set",
    check: minBytes("METRICS_TOKEN"),
  }),
  ALERT_WEBHOOK_URL: setting({
    schema: httpUrl.optional(),
    doc:
      "Receiver of security alerts (JSON POST, signed with `ALERT_WEBHOOK_SECRET`). Without it alerts are only logged.",
    show: (c) => c.alertWebhookUrl === undefined ? "unset" : new URL(c.alertWebhookUrl).host,
    check: (value, { production, settings }) => {
      if (value === undefined) return undefined;
      if (settings.ALERT_WEBHOOK_SECRET === undefined) {
        return '"ALERT_WEBHOOK_SECRET" must be set with "ALERT_WEBHOOK_URL"';
      }
      return production && !value.startsWith("https:")
        ? '"ALERT_WEBHOOK_URL" must be https in production'
        : undefined;
    },
  }),
  ALERT_WEBHOOK_SECRET: setting({
    schema: z.string().optional(),
    secret: true,
    doc:
      "HMAC-SHA256 key (≥ 32 bytes) signing each alert: `X-Bulwark-Signature: t=<unix>,v1=<hex of HMAC(t.body)>`.",
    check: minBytes("ALERT_WEBHOOK_SECRET"),
  }),
  INTRUSION_DETECTION: setting({
    schema: bool.default(true),
    doc: "Run the intrusion-detection rules (alerts and temporary blocks).",
    show: (c) => c.intrusionDetection,
  }),
  INTRUSION_RULES: setting({
    schema: RULES_JSON.optional(),
    fromFile: true,
    defaultDoc: "built-in rules",
    doc:
      'JSON object overriding rules by name, e.g. `{"login_failures_by_ip":{"threshold":50},"enumeration":{"enabled":false}}`; a new name adds a rule (`event`, `key`, `threshold` required). See SECURITY.md.',
    show: (c) => Object.keys(c.intrusionRules),
  }),
  AUDIT_SIGNING_KEY: setting({
    schema: z.string().optional(),
    secret: true,
    doc:
      "HMAC key (≥ 32 bytes) signing audit-chain checkpoints; without it `audit verify` cannot detect a forged chain (a warning says so).",
    show: (c) => c.auditSigningKey === undefined ? "unsigned" : "hmac-sha256",
    check: minBytes("AUDIT_SIGNING_KEY"),
  }),
  AUDIT_RETENTION_DAYS: setting({
    schema: positiveInt.max(3650).default(365),
    doc: "Audit records expire after this; export them first (`bulwark audit export`).",
    show: (c) => c.auditRetentionDays,
  }),
};
