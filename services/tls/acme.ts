/**
 * Automatic certificates over ACME (RFC 8555) with `acme-client`: HTTP-01 answered by the plain-HTTP
 * listener through {@linkcode AcmeService.challengeResponse}, the account key and the certificate
 * kept in the store (so every instance and every restart reuses them), renewal once a third of the
 * lifetime is left, and a short-lived self-signed placeholder until the first certificate exists.
 *
 * @module
 */
import acme from "acme-client";
import https from "node:https";
import type { Clock } from "../core/clock.ts";
import { randomId } from "../core/crypto.ts";
import { acmeAccountKey, acmeCertificateKey, acmeOrderLeaseKey } from "../core/kv_keys.ts";
import type { Logger } from "../core/logger.ts";
import { inspectIdentity, type TlsIdentity } from "./certificate.ts";
import { selfSigned } from "./self_signed.ts";
import type { TlsService } from "./tls.ts";

/** Dependencies of {@linkcode createAcmeService}. */
export interface AcmeServiceDeps {
  kv: Deno.Kv;
  clock: Clock;
  logger: Logger;
  tls: TlsService;
  directoryUrl: string;
  email: string;
  domains: readonly string[];
  /** PEM CA that signs the ACME server's own HTTPS certificate (a private CA such as Pebble). */
  caPem?: string;
  /** Polling attempts while the CA validates (acme-client back-off). @default 10 */
  backoffAttempts?: number;
}

/** The outcome of one {@linkcode AcmeService.renewIfDue}. */
export type AcmeOutcome = "issued" | "loaded" | "current" | "busy";

/** The ACME certificate manager of one process. */
export interface AcmeService {
  /** The key authorization for an HTTP-01 token being validated, else `undefined`. */
  challengeResponse(token: string): string | undefined;
  /** Installs the stored, unexpired certificate; false when there is none (nothing ordered). */
  loadStored(): Promise<boolean>;
  /** Serves a 1-hour self-signed certificate when nothing is in service yet (logged). */
  installPlaceholder(): Promise<void>;
  /**
   * Installs the stored certificate when it is newer than the one in service, and orders a new
   * one when none exists or less than a third of its lifetime is left.
   *
   * @throws {AcmeError} when the order fails (the pair in service stays)
   */
  renewIfDue(): Promise<AcmeOutcome>;
}

/** An order that failed; `message` says which step and what the CA answered. */
export class AcmeError extends Error {
  override readonly name = "AcmeError";
}

interface StoredCertificate {
  cert: string;
  key: string;
  issuedAt: string;
}

interface StoredAccount {
  key: string;
  url: string | undefined;
}

const LEASE_MS = 10 * 60_000;
const PLACEHOLDER_MS = 3600_000;

/** Creates the manager; nothing talks to the CA until {@linkcode AcmeService.renewIfDue}. */
export function createAcmeService(deps: AcmeServiceDeps): AcmeService {
  const { kv, clock, logger, tls } = deps;
  const domains = [...new Set(deps.domains)].sort();
  const domainsId = domains.join(",");
  const challenges = new Map<string, string>();
  if (deps.caPem !== undefined) {
    // acme-client sends every request through its one axios instance (a library-wide setting);
    // a process has one ACME configuration, so trusting the private CA there is scoped enough.
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: deps.caPem });
  }

  function isDue(identity: TlsIdentity): boolean {
    const info = inspectIdentity(identity);
    const lifetime = info.notAfter.getTime() - info.notBefore.getTime();
    const left = info.notAfter.getTime() - clock.now().getTime();
    return left < lifetime / 3;
  }

  async function account(): Promise<acme.Client> {
    const entry = await kv.get<StoredAccount>(acmeAccountKey(deps.directoryUrl));
    let stored = entry.value;
    if (stored === null) {
      stored = {
        key: (await acme.crypto.createPrivateEcdsaKey("P-256")).toString(),
        url: undefined,
      };
    }
    const client = new acme.Client({
      directoryUrl: deps.directoryUrl,
      accountKey: stored.key,
      backoffAttempts: deps.backoffAttempts ?? 10,
      ...(stored.url === undefined ? {} : { accountUrl: stored.url }),
    });
    if (stored.url === undefined) {
      await step(
        "account",
        () =>
          client.createAccount({ termsOfServiceAgreed: true, contact: [`mailto:${deps.email}`] }),
      );
      await kv.set(acmeAccountKey(deps.directoryUrl), {
        key: stored.key,
        url: client.getAccountUrl(),
      });
    }
    return client;
  }

  async function order(): Promise<StoredCertificate> {
    const client = await account();
    const [key, csr] = await acme.crypto.createCsr(
      { commonName: domains[0] ?? "", altNames: [...domains] },
      await acme.crypto.createPrivateEcdsaKey("P-256"),
    );
    const cert = await step("order", () =>
      client.auto({
        csr,
        email: deps.email,
        termsOfServiceAgreed: true,
        challengePriority: ["http-01"],
        // The CA's own validation is the check that counts; a local pre-check would need the
        // public port number, which behind NAT differs from HTTP_REDIRECT_PORT.
        skipChallengeVerification: true,
        challengeCreateFn: (_authz, challenge, keyAuthorization) => {
          if (challenge.type !== "http-01") throw new AcmeError(`unexpected ${challenge.type}`);
          challenges.set(challenge.token, keyAuthorization);
          return Promise.resolve();
        },
        challengeRemoveFn: (_authz, challenge) => {
          challenges.delete(challenge.token);
          return Promise.resolve();
        },
      }));
    return { cert, key: key.toString(), issuedAt: clock.now().toISOString() };
  }

  /** Installs the stored certificate when it is unexpired and not the one in service. */
  async function loadStored(): Promise<{ stored: StoredCertificate | null; loaded: boolean }> {
    const stored = (await kv.get<StoredCertificate>(acmeCertificateKey(domainsId))).value;
    if (stored === null || inspectIdentity(stored).notAfter <= clock.now()) {
      return { stored: null, loaded: false };
    }
    const inService = tls.certificateStatus();
    if (
      inService !== null && inService.source === "acme" &&
      inService.fingerprint256 === inspectIdentity(stored).fingerprint256
    ) {
      return { stored, loaded: false };
    }
    tls.install(stored, "acme");
    return { stored, loaded: true };
  }

  async function renewIfDue(): Promise<AcmeOutcome> {
    const { stored, loaded } = await loadStored();
    if (stored !== null && !isDue(stored)) return loaded ? "loaded" : "current";
    // One instance orders; the others pick the result up from the store on their next check.
    const lease = acmeOrderLeaseKey(domainsId);
    const took = await kv.atomic().check({ key: lease, versionstamp: null })
      .set(lease, randomId(), { expireIn: LEASE_MS }).commit();
    if (!took.ok) return "busy";
    try {
      logger.info("acme order started", { domains, directory: deps.directoryUrl });
      const started = performance.now();
      const issued = await order();
      tls.install(issued, "acme");
      await kv.set(acmeCertificateKey(domainsId), issued);
      logger.info("acme certificate issued", {
        domains,
        duration_ms: Math.round(performance.now() - started),
      });
      return "issued";
    } finally {
      await kv.delete(lease);
    }
  }

  async function installPlaceholder(): Promise<void> {
    if (tls.current() !== undefined) return;
    const now = clock.now();
    const placeholder = await selfSigned({
      commonName: "Bulwark ACME pending",
      domains,
      notBefore: now,
      notAfter: new Date(now.getTime() + PLACEHOLDER_MS),
    });
    tls.install(placeholder, "self-signed");
    logger.warn("serving a 1-hour self-signed certificate until the ACME certificate is issued", {
      domains,
    });
  }

  return {
    challengeResponse: (token) => challenges.get(token),
    loadStored: async () => (await loadStored()).loaded || tls.current() !== undefined,
    installPlaceholder,
    renewIfDue,
  };
}

/** Runs one ACME step, turning the library's errors into an {@linkcode AcmeError} that names it. */
async function step<T>(name: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof AcmeError || !(error instanceof Error)) throw error;
    // acme-client puts the CA's problem detail (e.g. the failed validation) in the message.
    throw new AcmeError(`acme ${name} failed: ${error.message}`, { cause: error });
  }
}
