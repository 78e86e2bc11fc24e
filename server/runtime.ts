import type { Hono } from "hono";
import type { AppEnv } from "../middleware/app_env.ts";
import { createApp } from "../routes/app.ts";
import type { Config } from "../services/config/config.ts";
import { withBusyRetry } from "../services/core/kv.ts";
import { createServices, type Deps, type Services } from "../services/container.ts";
import { type Clock, createSystemClock } from "../services/core/clock.ts";
import { createLogger, type Logger } from "../services/core/logger.ts";
import { createBcryptHasher, type PasswordHasher } from "../services/identity/password_hasher.ts";
import type { PasswordPolicy } from "../services/identity/password_policy.ts";
import { createMailer, type Mailer } from "../services/mail/mailer.ts";
import type { BlobStore } from "../services/uploads/blob_store.ts";
import { createClamdScanner, type VirusScanner } from "../services/uploads/scanner.ts";
import {
  breakerValue,
  createMetrics,
  createNoopMetrics,
  instrumentKv,
} from "../services/ops/metrics.ts";
import { createSelfCheck, type SelfCheck } from "../services/ops/self_check.ts";
import { VERSION } from "../version.ts";

/** One wired instance of Bulwark: its dependencies, services and app, and how to close them. */
export interface Runtime extends AsyncDisposable {
  readonly deps: Deps;
  readonly services: Services;
  readonly app: Hono<AppEnv>;
  /** Audit-chain and certificate checks (`serve` runs them periodically). */
  readonly selfCheck: SelfCheck;
  /**
   * Settles background work (reset mails, buffered API-key usage), then closes
   * the hasher's workers, the mailer, the scanner and the store, in that order.
   */
  close(): Promise<void>;
}

/**
 * Replacements for the parts `createRuntime` would otherwise build from the
 * configuration; whatever is passed in is the caller's to close.
 */
export interface RuntimeOverrides {
  /** @default `Deno.openKv(config.kvPath)` */
  kv?: Deno.Kv;
  /** @default the system clock */
  clock?: Clock;
  /** @default bcrypt in a worker pool at `BCRYPT_ROUNDS` */
  hasher?: PasswordHasher;
  /** @default SMTP from `SMTP_URL` (logged in development) */
  mailer?: Mailer;
  /** @default a JSON-lines logger at `LOG_LEVEL` */
  logger?: Logger;
  /** @default a new policy (large dictionaries: tests share one) */
  policy?: PasswordPolicy;
  /** @default a clamd client when `CLAMAV_ADDRESS` is set, else none */
  scanner?: VirusScanner | null;
  /** @default the `UPLOAD_STORE` store */
  blobStore?: BlobStore;
}

/** Opens the configured store: the embedded file (its folder made 0700), KV Connect, or Deploy's. */
export async function openStore(config: Config): Promise<Deno.Kv> {
  const path = config.kvPath;
  if (path !== undefined && !/^https?:/.test(path) && path !== ":memory:") {
    const slash = path.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true, mode: 0o700 });
  }
  return await Deno.openKv(path);
}

/**
 * The one wiring of Bulwark, used by `main.ts`, every command-line command,
 * the benchmark and the end-to-end tests: config → store → services → app.
 */
export async function createRuntime(
  config: Config,
  overrides: RuntimeOverrides = {},
): Promise<Runtime> {
  const logger = overrides.logger ?? createLogger({ level: config.logLevel });
  const owned: Array<() => void> = [];
  const store = overrides.kv ?? await openStore(config);
  if (overrides.kv === undefined) owned.push(() => store.close());
  try {
    // One registry per runtime: prom-client's default registry is process-global.
    const metrics = config.metricsEnabled
      ? createMetrics({ version: VERSION })
      : createNoopMetrics();
    // One retry policy for "database is locked" on every write (several processes, one file),
    // inside the instrumentation so metrics see whole operations.
    const kv = instrumentKv(withBusyRetry(store), metrics);
    const hasher = overrides.hasher ?? createBcryptHasher({
      rounds: config.bcryptRounds,
      backend: config.bcryptBackend,
      logger,
    });
    if (overrides.hasher === undefined) owned.push(() => hasher.close());
    const mailer = overrides.mailer ?? createMailer({
      smtpUrl: config.smtpUrl,
      from: config.mailFrom,
      production: config.appEnv === "production",
      logger,
    });
    if (overrides.mailer === undefined) owned.push(() => mailer.close());
    let scanner = overrides.scanner;
    if (scanner === undefined && config.clamavAddress !== undefined) {
      const built = createClamdScanner({
        address: config.clamavAddress,
        logger,
        timeoutMs: config.clamavTimeoutMs,
      });
      owned.push(() => built.close());
      scanner = built;
    }
    const deps: Deps = {
      config,
      kv,
      clock: overrides.clock ?? createSystemClock(),
      hasher,
      mailer,
      logger,
      scanner: scanner ?? null,
      ...(overrides.policy === undefined ? {} : { policy: overrides.policy }),
      ...(overrides.blobStore === undefined ? {} : { blobStore: overrides.blobStore }),
      metrics,
    };
    for (const [name, part] of [["mailer", mailer], ["scanner", scanner]] as const) {
      const read = part?.breakerState?.bind(part);
      if (read !== undefined) {
        metrics.gauge("breaker_state", () => [[{ breaker: name }, breakerValue(read())]]);
      }
    }
    const services = createServices(deps);
    // Deploy and KV Connect push other instances' writes to kv.watch; an embedded file does not
    // (verified), so the feed is always polled too.
    services.feed.start({ watch: config.kvPath === undefined || /^https?:/.test(config.kvPath) });
    // Off means no limiting at all: nothing to reconcile.
    if (config.rateLimits.enabled) services.localRates.start();
    const selfCheck = createSelfCheck({
      kv,
      clock: deps.clock,
      logger,
      audit: services.audit,
      metrics,
      signingKey: config.auditSigningKey,
      retentionDays: config.auditRetentionDays,
      certificatePem: config.tlsCertFile === undefined
        ? undefined
        : await Deno.readTextFile(config.tlsCertFile),
    });
    const app = createApp(deps, services);
    let closed: Promise<void> | undefined;
    const close = (): Promise<void> => {
      closed ??= (async () => {
        try {
          await services.feed.close();
          await services.localRates.close();
          await services.passwords.settled();
          await services.apiKeys.drain();
          await services.ops.intrusion.settled();
          await services.audit.checkpoint();
          await services.ops.alerts.close();
        } finally {
          // Closed in reverse order of creation: the store last.
          for (const closeOne of owned.reverse()) closeOne();
        }
      })();
      return closed;
    };
    return { deps, services, app, selfCheck, close, [Symbol.asyncDispose]: close };
  } catch (error) {
    for (const closeOne of owned.reverse()) closeOne();
    throw error;
  }
}
