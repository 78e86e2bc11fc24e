/**
 * Periodic self-checks of a running instance: the audit chain verifies, and
 * the TLS certificate is not about to expire. Failures become audit events,
 * which the intrusion rules turn into alerts.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import type { AuditService } from "../core/audit.ts";
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/logger.ts";
import { verifyAudit } from "./audit_log.ts";
import type { Metrics } from "./metrics.ts";

/** Days before expiry that raise `tls_certificate_expiring` (GUIDELINES: 14). */
export const CERT_WARNING_DAYS = 14;

/** The `notAfter` of the first certificate of a PEM chain. */
export function certificateExpiry(pem: string): Date {
  return new Date(new X509Certificate(pem).validTo);
}

/** Options of {@linkcode createSelfCheck}. */
export interface SelfCheckOptions {
  kv: Deno.Kv;
  clock: Clock;
  logger: Logger;
  audit: AuditService;
  metrics: Metrics;
  signingKey: Uint8Array | undefined;
  retentionDays: number;
  /** PEM of the served certificate, when serving TLS. */
  certificatePem?: string | undefined;
}

/** Runs the checks once; returns what failed. */
export interface SelfCheck {
  run(): Promise<string[]>;
}

/** Creates the self-check of one runtime; also exports the certificate-expiry gauge. */
export function createSelfCheck(options: SelfCheckOptions): SelfCheck {
  const { kv, clock, audit, metrics } = options;
  const expiry = options.certificatePem === undefined
    ? null
    : certificateExpiry(options.certificatePem);
  if (expiry !== null) {
    metrics.gauge("tls_cert_expiry_seconds", () => [[
      {},
      Math.floor((expiry.getTime() - clock.now().getTime()) / 1000),
    ]]);
  }
  return {
    async run() {
      const failures: string[] = [];
      const result = await verifyAudit(kv, {
        signingKey: options.signingKey,
        now: clock.now(),
        retentionDays: options.retentionDays,
      });
      if (!result.ok) {
        failures.push("audit_chain");
        await audit.record({
          type: "ops.audit_verify_failed",
          outcome: "failure",
          details: { problems: result.problems.slice(0, 20).map((p) => p.message) },
        });
      }
      if (expiry !== null) {
        const days = (expiry.getTime() - clock.now().getTime()) / 86_400_000;
        if (days < CERT_WARNING_DAYS) {
          failures.push("tls_certificate");
          await audit.record({
            type: "ops.tls_certificate_expiring",
            outcome: "failure",
            details: { not_after: expiry.toISOString(), days_left: Math.floor(days) },
          });
        }
      }
      if (failures.length > 0) options.logger.warn("self-check failed", { failures });
      return failures;
    },
  };
}
