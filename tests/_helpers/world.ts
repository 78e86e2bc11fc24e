/**
 * One test world: an in-memory store, a fake clock and the wired service (deps, services,
 * app) built by the same `createRuntime` as `main.ts`. No socket, no environment variables.
 */
import type { Config, ConfigIo } from "../../services/config/config.ts";
import { loadConfig } from "../../services/config/config.ts";
import type { Clock } from "../../services/core/clock.ts";
import { createLogger, type Logger } from "../../services/core/logger.ts";
import {
  createBcryptHasher,
  type PasswordHasher,
} from "../../services/identity/password_hasher.ts";
import {
  createPasswordPolicy,
  type PasswordPolicy,
} from "../../services/identity/password_policy.ts";
import type { Mail, Mailer } from "../../services/mail/mailer.ts";
import type { VirusScanner } from "../../services/uploads/scanner.ts";
import { createRuntime, type Runtime } from "../../server/runtime.ts";
import type { Deps, Services } from "../../services/container.ts";

/** A clock that only moves when told to. */
export class FakeClock implements Clock {
  #now: number;
  constructor(start: Date | string = "2026-01-01T00:00:00.000Z") {
    this.#now = new Date(start).getTime();
  }
  now(): Date {
    return new Date(this.#now);
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}

/** Config I/O backed by a map, so tests touch no disk. */
export function memoryIo(files: Record<string, string> = {}): ConfigIo & {
  files: Record<string, string>;
} {
  return {
    files,
    readTextFile: (path) => files[path] ?? null,
    writeSecretFile: (path, text) => {
      files[path] = text;
    },
  };
}

/** A test config: fixed distinct secrets, quiet logs, overridable by env names. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    APP_ENV: "test",
    JWT_ACCESS_SECRET: "test-access-secret-0123456789abcdef0123456789",
    JWT_REFRESH_SECRET: "test-refresh-secret-0123456789abcdef012345678",
    BCRYPT_ROUNDS: "10",
    CORS_ORIGINS: "https://app.example.com,https://*.example.org",
    LOG_LEVEL: "error",
    // Generous limits so feature tests are not throttled; rate-limit tests set their own.
    RATE_LIMIT_LOGIN: "1000/minute",
    RATE_LIMIT_AUTHENTICATED: "1000/minute",
    RATE_LIMIT_ANONYMOUS: "1000/minute",
    // Feature tests act as verified users; verification tests turn it back on.
    REQUIRE_EMAIL_VERIFICATION: "false",
    // Feature tests send mails back to back; the mail-flooding tests use the defaults.
    MAIL_ACCOUNT_INTERVAL_MINUTES: "0",
    MAIL_ACCOUNT_DAILY_LIMIT: "1000",
    ...env,
  }, { io: memoryIo() });
}

/** A logger that keeps its lines for assertions. */
export type MemoryLogger = Logger & { readonly lines: string[] };

/** A logger at `debug` that keeps every line. */
export function memoryLogger(): MemoryLogger {
  const lines: string[] = [];
  return Object.assign(createLogger({ level: "debug", write: (line) => lines.push(line) }), {
    lines,
  });
}

/** A mailer that keeps what it was asked to send. */
export type MemoryMailer = Mailer & { readonly sent: Mail[] };

/** A mailer that delivers into its `sent` array. */
export function memoryMailer(): MemoryMailer {
  const sent: Mail[] = [];
  return {
    sent,
    send(mail) {
      sent.push(mail);
      return Promise.resolve();
    },
    close() {},
  };
}

/** The same bcrypt implementation at its minimum cost, on the calling thread. */
export function testHasher(): PasswordHasher {
  return createBcryptHasher({ rounds: 4, workers: 0 });
}

let sharedPolicy: PasswordPolicy | undefined;

/** The password policy; built once per test process because its dictionaries are large. */
export function testPolicy(): PasswordPolicy {
  sharedPolicy ??= createPasswordPolicy();
  return sharedPolicy;
}

/** Options of {@linkcode openWorld}; whatever is passed in is the caller's to close. */
export interface WorldOptions<M extends Mailer = MemoryMailer> {
  /** Settings on top of {@linkcode testConfig}. @default `UPLOAD_STORE=kv`, so nothing lands on disk */
  env?: Record<string, string>;
  /** A store to share between worlds (two instances, one store). @default a new `:memory:` store */
  kv?: Deno.Kv;
  /** @default a new {@linkcode FakeClock} */
  clock?: FakeClock;
  /** @default {@linkcode memoryMailer} */
  mailer?: M;
  /** @default none */
  scanner?: VirusScanner | null;
}

/** One wired instance on a fake clock; `await using` settles its background work and closes it. */
export interface World<M extends Mailer = MemoryMailer> extends AsyncDisposable {
  readonly kv: Deno.Kv;
  readonly clock: FakeClock;
  readonly logger: MemoryLogger;
  readonly mailer: M;
  readonly deps: Deps;
  /** The app's own services: await `services.passwords.settled()` for background mail. */
  readonly services: Services;
  readonly app: Runtime["app"];
}

/** Opens a test world: `await using w = await openWorld()`. */
export async function openWorld<M extends Mailer = MemoryMailer>(
  options: WorldOptions<M> = {},
): Promise<World<M>> {
  const config = testConfig({ UPLOAD_STORE: "kv", ...options.env });
  const kv = options.kv ?? await Deno.openKv(":memory:");
  const clock = options.clock ?? new FakeClock();
  const logger = memoryLogger();
  const mailer = options.mailer ?? memoryMailer() as Mailer as M;
  let runtime: Runtime;
  try {
    runtime = await createRuntime(config, {
      kv,
      clock,
      hasher: testHasher(),
      mailer,
      logger,
      policy: testPolicy(),
      scanner: options.scanner ?? null,
    });
  } catch (error) {
    if (options.kv === undefined) kv.close();
    throw error;
  }
  return {
    kv,
    clock,
    logger,
    mailer,
    deps: runtime.deps,
    services: runtime.services,
    app: runtime.app,
    async [Symbol.asyncDispose]() {
      try {
        await runtime.close();
      } finally {
        if (options.kv === undefined) kv.close();
      }
    },
  };
}

/** An audit event as stored. */
export interface StoredAuditEvent {
  type: string;
  outcome: string;
  user_id?: string;
  details: Record<string, unknown>;
}

/** The stored audit events, optionally of one type, in id (time) order. */
export async function auditEvents(kv: Deno.Kv, type?: string): Promise<StoredAuditEvent[]> {
  const events: StoredAuditEvent[] = [];
  for await (const e of kv.list<StoredAuditEvent>({ prefix: ["audit"] })) {
    if (type === undefined || e.value.type === type) events.push(e.value);
  }
  return events;
}

/** The types of every stored audit event. */
export async function auditTypes(kv: Deno.Kv): Promise<string[]> {
  return (await auditEvents(kv)).map((e) => e.type);
}
