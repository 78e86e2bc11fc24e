/**
 * The TLS certificate in service: which pair new connections get, where it came from, and how long
 * it has left. Sources (`file_source.ts`, `acme.ts`) install pairs here; the HTTPS listener
 * subscribes with `onChange`; metrics and `check-config` read {@linkcode TlsService.certificateStatus}.
 *
 * @module
 */
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/logger.ts";
import {
  type CertificateInfo,
  inspectIdentity,
  type TlsIdentity,
  TlsIdentityError,
} from "./certificate.ts";

/** Where the pair in service came from. */
export type CertificateSource = "file" | "acme" | "self-signed";

/** A snapshot of the pair in service, for `/metrics`, `check-config` and alerts. */
export interface CertificateStatus extends CertificateInfo {
  readonly source: CertificateSource;
  /** Negative once expired. */
  readonly secondsToExpiry: number;
}

/** Below this, every check logs a warning (the alert threshold). */
export const EXPIRY_WARNING_SECONDS = 14 * 24 * 3600;

/** The certificate holder of one process. */
export interface TlsService {
  /** The pair new connections get, if any. */
  current(): TlsIdentity | undefined;
  /**
   * Validates `identity` (key match, key strength, not expired when `refuseExpired`) and makes it
   * the pair in service. On refusal the previous pair stays.
   *
   * @throws {TlsIdentityError} naming why the pair was refused
   */
  install(identity: TlsIdentity, source: CertificateSource): CertificateStatus;
  /** Seconds to expiry and details of the pair in service; `null` before the first one. */
  certificateStatus(): CertificateStatus | null;
  /** Logs a warning when the pair in service expires within 14 days (or has expired). */
  checkExpiry(): void;
  /** Called after every successful {@linkcode install}. */
  onChange(listener: (identity: TlsIdentity) => void): void;
}

/** Dependencies of {@linkcode createTlsService}. */
export interface TlsServiceDeps {
  clock: Clock;
  logger: Logger;
  /** Refuse pairs whose certificate has expired (production). */
  refuseExpired: boolean;
}

/** Creates the certificate holder. */
export function createTlsService(deps: TlsServiceDeps): TlsService {
  const { clock, logger } = deps;
  let active:
    | { identity: TlsIdentity; info: CertificateInfo; source: CertificateSource }
    | undefined;
  const listeners: Array<(identity: TlsIdentity) => void> = [];

  function status(): CertificateStatus | null {
    if (active === undefined) return null;
    const secondsToExpiry = Math.floor(
      (active.info.notAfter.getTime() - clock.now().getTime()) / 1000,
    );
    return { ...active.info, source: active.source, secondsToExpiry };
  }

  function checkExpiry(): void {
    const s = status();
    if (s === null || s.source === "self-signed") return;
    if (s.secondsToExpiry < EXPIRY_WARNING_SECONDS) {
      logger.warn("tls certificate expires soon", {
        alert: "tls_certificate_expiry",
        seconds_to_expiry: s.secondsToExpiry,
        not_after: s.notAfter.toISOString(),
        subject: s.subject,
        source: s.source,
      });
    }
  }

  return {
    current: () => active?.identity,
    install(identity, source) {
      const info = inspectIdentity(identity);
      if (deps.refuseExpired && info.notAfter.getTime() <= clock.now().getTime()) {
        throw new TlsIdentityError(`the certificate expired at ${info.notAfter.toISOString()}`);
      }
      active = { identity, info, source };
      logger.info("tls certificate in service", {
        source,
        subject: info.subject,
        key: info.keyType,
        not_after: info.notAfter.toISOString(),
        sha256: info.fingerprint256,
      });
      for (const listener of listeners) listener(identity);
      checkExpiry();
      // status() is non-null: active was just set.
      return status() as CertificateStatus;
    },
    certificateStatus: status,
    checkExpiry,
    onChange(listener) {
      listeners.push(listener);
    },
  };
}
