import { describeConfig } from "../../services/config/config.ts";
import type { Config } from "../../services/config/config.ts";
import { createSystemClock } from "../../services/core/clock.ts";
import { inspectIdentity, TlsIdentityError } from "../../services/tls/certificate.ts";
import type { CliCommand } from "../cli.ts";
import { loadCommandConfig } from "./config.ts";

/** `bulwark check-config`: validates the configuration and prints the effective non-secret settings. */
export const checkConfigCommand: CliCommand = {
  name: "check-config",
  summary: "Validate the configuration, print the effective non-secret settings",
  async run({ env, io }) {
    const config = loadCommandConfig(env, io);
    if (config === null) return 1;
    const certificate = await describeCertificate(config);
    if (typeof certificate === "string") {
      io.err(`Configuration error:\n  - TLS certificate refused: ${certificate}`);
      return 1;
    }
    io.out(JSON.stringify({ ...describeConfig(config), ...certificate }, null, 2));
    return 0;
  },
};

/**
 * The certificate files judged as `serve` would judge them: details and seconds to expiry, or the
 * reason `serve` would refuse them. ACME certificates live in the store (see `/metrics`).
 */
async function describeCertificate(config: Config): Promise<Record<string, unknown> | string> {
  if (config.tlsCertFile === undefined || config.tlsKeyFile === undefined) return {};
  try {
    const info = inspectIdentity({
      cert: await Deno.readTextFile(config.tlsCertFile),
      key: await Deno.readTextFile(config.tlsKeyFile),
    });
    const secondsToExpiry = Math.floor(
      (info.notAfter.getTime() - createSystemClock().now().getTime()) / 1000,
    );
    if (secondsToExpiry <= 0 && config.appEnv === "production") {
      return `the certificate expired at ${info.notAfter.toISOString()}`;
    }
    return {
      tls_certificate: {
        subject: info.subject,
        issuer: info.issuer,
        names: info.altNames,
        key: info.keyType,
        not_after: info.notAfter.toISOString(),
        seconds_to_expiry: secondsToExpiry,
        sha256: info.fingerprint256,
      },
    };
  } catch (error) {
    if (error instanceof TlsIdentityError || error instanceof Deno.errors.NotFound) {
      return error.message;
    }
    throw error;
  }
}
