/**
 * Wires certificate sources to the HTTPS listener: files (reload on change or `SIGHUP`) or ACME
 * (placeholder, first order, renewal checks), plus the daily expiry check. Used by `serve` and by
 * the end-to-end TLS tests, so both run the same code.
 *
 * @module
 */
import type { Config } from "../services/config/config.ts";
import type { Clock } from "../services/core/clock.ts";
import type { Logger } from "../services/core/logger.ts";
import type { TlsIdentity } from "../services/tls/certificate.ts";
import { createFileCertificateSource } from "../services/tls/file_source.ts";
import type { TlsService } from "../services/tls/tls.ts";
import type { HttpsServer, TlsMinVersion } from "./http_server.ts";

/** What {@linkcode prepareTls} needs. */
export interface TlsSetupDeps {
  config: Config;
  kv: Deno.Kv;
  clock: Clock;
  logger: Logger;
  tls: TlsService;
}

/** How often ACME checks whether renewal is due (and retries a failed order). */
export const ACME_CHECK_MS = 3600_000;
/** A failed order is retried this soon, not after a whole check interval. */
export const ACME_RETRY_MS = 5 * 60_000;

/** A certificate ready for the listener, and the automation to start once it listens. */
export interface PreparedTls {
  readonly identity: TlsIdentity;
  readonly minVersion: TlsMinVersion;
  readonly acmeChallenge: ((token: string) => string | undefined) | undefined;
  /**
   * Follows certificate changes on `server`, starts reload/renewal; dispose to stop. With ACME the
   * first order runs in the background; `firstOrder` settles when it has.
   */
  start(server: HttpsServer): { firstOrder: Promise<void> } & Disposable;
  /** Re-reads the certificate files now (the `SIGHUP` action); no-op with ACME. */
  reload(reason: string): Promise<boolean>;
  /** One renewal check now, as the timer runs it (failures logged); no-op with files. */
  checkNow(): Promise<void>;
}

/**
 * Loads the first certificate: from the files (start-up fails on a bad, weak or, in production,
 * expired pair) or from ACME (the stored one, else a 1-hour self-signed placeholder).
 * `undefined` when TLS is not configured.
 */
export async function prepareTls(deps: TlsSetupDeps): Promise<PreparedTls | undefined> {
  const { config, tls, logger } = deps;
  const minVersion: TlsMinVersion = config.tlsAllowTls12 ? "TLSv1.2" : "TLSv1.3";
  if (config.tlsCertFile !== undefined && config.tlsKeyFile !== undefined) {
    const files = createFileCertificateSource({
      certFile: config.tlsCertFile,
      keyFile: config.tlsKeyFile,
      tls,
      logger,
    });
    await files.load();
    return {
      identity: currentOf(tls),
      minVersion,
      acmeChallenge: undefined,
      reload: files.reload,
      checkNow: () => Promise.resolve(),
      start(server) {
        tls.onChange((identity) => server.setIdentity(identity));
        const watcher = files.watch();
        const expiry = setInterval(() => tls.checkExpiry(), 24 * 3600_000);
        return {
          firstOrder: Promise.resolve(),
          [Symbol.dispose]() {
            watcher[Symbol.dispose]();
            clearInterval(expiry);
          },
        };
      },
    };
  }
  if (config.acme === undefined) return undefined;
  // acme-client and @peculiar/x509 cost ~250 ms to load: only a server that orders pays it.
  const { AcmeError, createAcmeService } = await import("../services/tls/acme.ts");
  const acme = createAcmeService({
    kv: deps.kv,
    clock: deps.clock,
    logger,
    tls,
    directoryUrl: config.acme.directoryUrl,
    email: config.acme.email,
    domains: config.acme.domains,
    ...(config.acme.caFile === undefined
      ? {}
      : { caPem: await Deno.readTextFile(config.acme.caFile) }),
  });
  // Ordering waits for the listeners (HTTP-01 needs the redirect port); until then the stored
  // certificate, or a placeholder the log explains.
  if (!await acme.loadStored()) await acme.installPlaceholder();
  return {
    identity: currentOf(tls),
    minVersion,
    acmeChallenge: acme.challengeResponse,
    reload: () => Promise.resolve(false),
    checkNow: async () => void await checkOnce(),
    start(server) {
      tls.onChange((identity) => server.setIdentity(identity));
      let timer: ReturnType<typeof setTimeout> | undefined;
      let stopped = false;
      const loop = async (): Promise<void> => {
        const next = await checkOnce();
        if (!stopped) timer = setTimeout(() => void loop(), next);
      };
      // The order may need the redirect listener (HTTP-01), which is up now.
      const firstOrder = loop();
      return {
        firstOrder,
        [Symbol.dispose]() {
          stopped = true;
          clearTimeout(timer);
        },
      };
    },
  };

  /** Renews when due; returns the delay until the next check (shorter after a failure). */
  async function checkOnce(): Promise<number> {
    let next = ACME_CHECK_MS;
    try {
      await acme.renewIfDue();
    } catch (error) {
      // A timer has no caller to throw to: every failure is logged and retried.
      if (!(error instanceof Error)) throw error;
      logger.error("acme order failed; the certificate in service stays", {
        problem: error instanceof AcmeError ? error.message : `${error.name}: ${error.message}`,
        retry_in_s: ACME_RETRY_MS / 1000,
      });
      next = ACME_RETRY_MS;
    }
    tls.checkExpiry();
    return next;
  }
}

function currentOf(tls: TlsService): TlsIdentity {
  const identity = tls.current();
  if (identity === undefined) throw new Error("no certificate was installed");
  return identity;
}
