/**
 * The one server setup of `deno task bench`: the bench's configuration, the
 * service started through `createRuntime` and `startHttpServer` exactly as
 * `main.ts` starts it, bench accounts, and a server-side status tally.
 */
import type { Hono } from "hono";
import type { AppEnv } from "../../middleware/app_env.ts";
import { type HttpServer, startHttpServer } from "../../server/http_server.ts";
import { createRuntime, type Runtime, type RuntimeOverrides } from "../../server/runtime.ts";
import { type Config, type ConfigIo, loadConfig } from "../../services/config/config.ts";
import type { Logger } from "../../services/core/logger.ts";

/** Config I/O that reads no file and writes nothing, so a local .env cannot skew the bench. */
const NO_DISK: ConfigIo = { readTextFile: () => null, writeSecretFile: () => {} };

/**
 * The bench's config, on an in-memory store unless `extra` sets `KV_PATH`.
 * Rate limits (API.md: 5/minute per IP and per account for logins,
 * per-minute budgets for the rest) would refuse almost every bench request,
 * since all of them come from 127.0.0.1 for one account; they are raised
 * rather than disabled, so the limiter's bookkeeping stays in the measured
 * cost. loadConfig ignores names it does not know, so each entry is harmless
 * until the setting exists.
 */
export function benchConfig(extra: Record<string, string> = {}): Config {
  const unlimited = "1000000/second";
  return loadConfig({
    APP_ENV: "test",
    JWT_ACCESS_SECRET: "bench-access-secret-0123456789abcdef01234567",
    JWT_REFRESH_SECRET: "bench-refresh-secret-0123456789abcdef0123456",
    LOG_LEVEL: "error",
    KV_PATH: ":memory:",
    RATE_LIMIT_LOGIN: unlimited,
    RATE_LIMIT_AUTHENTICATED: unlimited,
    RATE_LIMIT_ANONYMOUS: unlimited,
    // Bench accounts act as verified users (API keys, uploads).
    REQUIRE_EMAIL_VERIFICATION: "false",
    ...extra,
  }, { io: NO_DISK });
}

/** Bulwark listening on loopback. */
export interface BenchServer {
  readonly runtime: Runtime;
  readonly server: HttpServer;
  /** `http://127.0.0.1:PORT`. */
  readonly origin: string;
  /** Shuts the listener down, then closes the runtime (its background work settled first). */
  close(): Promise<void>;
}

/** Options of {@linkcode startBenchServer}. */
export interface BenchServerOptions {
  /**
   * Wraps the app's handler, e.g. to count on the server what it answered.
   * @default the app's own handler
   */
  wrap?: (handler: Deno.ServeHandler<Deno.NetAddr>) => Deno.ServeHandler<Deno.NetAddr>;
  /**
   * Another bench server whose store, clock, hasher, mailer, logger and
   * password policy this one uses: a second app over the same store and keyring.
   * The other server closes them.
   */
  sharing?: BenchServer;
  /** Passed to `createRuntime`; whatever is passed in is the caller's to close. @default none */
  overrides?: RuntimeOverrides;
}

/**
 * Starts Bulwark on `config` through `createRuntime` (the production
 * hasher's worker pool, the log mailer, no scanner unless configured) and
 * `startHttpServer` on a free loopback port.
 */
export async function startBenchServer(
  config: Config,
  options: BenchServerOptions = {},
): Promise<BenchServer> {
  const shared = options.sharing?.runtime;
  const runtime = await createRuntime(config, {
    ...(shared === undefined ? {} : {
      kv: shared.deps.kv,
      clock: shared.deps.clock,
      hasher: shared.deps.hasher,
      mailer: shared.deps.mailer,
      logger: shared.deps.logger,
      policy: shared.services.policy,
    }),
    ...options.overrides,
  });
  const { app } = runtime;
  const handler: Deno.ServeHandler<Deno.NetAddr> = (req, info) => app.fetch(req, info);
  let server: HttpServer;
  try {
    server = listen(options.wrap?.(handler) ?? handler, runtime.deps.logger);
  } catch (error) {
    await runtime.close();
    throw error;
  }
  return {
    runtime,
    server,
    origin: `http://127.0.0.1:${server.addr.port}`,
    async close() {
      try {
        await server.shutdown();
      } finally {
        await runtime.close();
      }
    },
  };
}

/** Two bench servers over one store and keyring, the second borrowing the first's parts. */
export interface BenchPair extends AsyncDisposable {
  readonly owner: BenchServer;
  readonly borrower: BenchServer;
}

/**
 * Starts `owner`, then `borrower` sharing its store, clock, hasher, mailer,
 * logger and policy (the same accounts and tokens work on both); disposing
 * closes the borrower first, then the owner, which closes what they share.
 */
export async function startBenchPair(
  owner: Config,
  borrower: Config,
  options: Pick<BenchServerOptions, "wrap"> = {},
): Promise<BenchPair> {
  const first = await startBenchServer(owner, options);
  let second: BenchServer;
  try {
    second = await startBenchServer(borrower, { ...options, sharing: first });
  } catch (error) {
    await first.close();
    throw error;
  }
  return {
    owner: first,
    borrower: second,
    async [Symbol.asyncDispose]() {
      try {
        await second.close();
      } finally {
        await first.close();
      }
    },
  };
}

/**
 * `startHttpServer` on a free loopback port, as {@linkcode startBenchServer}
 * uses it: for bare apps compared with Bulwark, so the only difference is the app.
 */
export function listen(handler: Deno.ServeHandler<Deno.NetAddr>, logger: Logger): HttpServer {
  return startHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    logger,
    shutdownTimeoutMs: 2000,
    handler,
  });
}

/**
 * Counts, on the server, every response that was not 200 (and every exception),
 * so a refusal can never pass for throughput: wrk only counts statuses ≥ 400.
 */
export class StatusTally {
  readonly #bad = new Map<number, number>();

  /** `handler`, counting the status of each response it gives. */
  wrap(handler: Deno.ServeHandler<Deno.NetAddr>): Deno.ServeHandler<Deno.NetAddr> {
    return async (req, info) => {
      let status = 0;
      try {
        const res = await handler(req, info);
        status = res.status;
        return res;
      } finally {
        if (status !== 200) this.#bad.set(status, (this.#bad.get(status) ?? 0) + 1);
      }
    };
  }

  /** Throws unless every response so far was a 200. */
  assertAllOk(what: string): void {
    if (this.#bad.size === 0) return;
    const counts = [...this.#bad].map(([status, n]) =>
      `${n}× ${status === 0 ? "exception" : status}`
    );
    throw new Error(
      `bench: ${what}: the server answered ${counts.join(", ")}; every response must be 200 ` +
        `(a 429 means a rate limit the bench does not raise yet: see benchConfig)`,
    );
  }
}

/** The bench account's password: passes the policy (as tests' GOOD_PASSWORD). */
export const BENCH_PASSWORD = "Correct-Horse-42-Battery!";
/** One User-Agent for every auth request: sessions are fingerprinted by it. */
export const BENCH_USER_AGENT = "bulwark-bench/1";
/** Accounts the `/users/me` sections spread their requests over: a bucket each. */
export const SPREAD_USERS = 32;
/**
 * bcrypt cost of the `/users/me` sections: only their setup hashes (register,
 * login), so the lowest cost loadConfig accepts keeps the setup short.
 */
export const SETUP_BCRYPT_ROUNDS = "10";

/** `count` bench account emails, unique to this run. */
export function benchEmails(count: number): string[] {
  const run = crypto.randomUUID().slice(0, 8);
  return Array.from(
    { length: count },
    (_, i) => `bench-${run}-${String(i).padStart(3, "0")}@example.com`,
  );
}

/** A bench account and the access token of one login. */
export interface BenchUser {
  email: string;
  /** Never printed. */
  token: string;
}

/**
 * Registers `count` accounts and logs each in once, in-process
 * (`app.request`), `cores` at a time to keep the bcrypt pool busy.
 */
export async function registerAndLogin(
  app: Hono<AppEnv>,
  count: number,
  cores: number,
): Promise<BenchUser[]> {
  const emails = benchEmails(count);
  const headers = { "Content-Type": "application/json", "User-Agent": BENCH_USER_AGENT };
  const users: BenchUser[] = [];
  for (let i = 0; i < emails.length; i += cores) {
    const batch = await Promise.allSettled(
      emails.slice(i, i + cores).map(async (email): Promise<BenchUser> => {
        const registered = await app.request("/auth/register", {
          method: "POST",
          headers,
          body: JSON.stringify({ email, password: BENCH_PASSWORD, display_name: "Bench" }),
        });
        if (registered.status !== 201) {
          throw new Error(
            `bench: register answered ${registered.status} ${await registered.text()}`,
          );
        }
        const login = await app.request("/auth/login", {
          method: "POST",
          headers,
          body: JSON.stringify({ email, password: BENCH_PASSWORD }),
        });
        const pair = await login.json() as { access_token?: unknown };
        if (login.status !== 200 || typeof pair.access_token !== "string") {
          // Never print a token; a refusal's problem body contains none.
          throw new Error(`bench: login for a token answered ${login.status}`);
        }
        return { email, token: pair.access_token };
      }),
    );
    for (const outcome of batch) {
      if (outcome.status === "rejected") throw outcome.reason;
      users.push(outcome.value);
    }
  }
  return users;
}

/**
 * One loopback `GET /users/me` with `headers` before the load: must answer 200
 * for `email`. Returns the response headers (never printed whole).
 */
export async function checkMe(
  url: string,
  headers: Record<string, string>,
  email: string,
): Promise<Headers> {
  const res = await fetch(url, { headers: { ...headers, "User-Agent": BENCH_USER_AGENT } });
  const body = await res.json() as { email?: unknown };
  if (res.status !== 200 || body.email !== email) {
    throw new Error(`bench: ${url} answered ${res.status} ${JSON.stringify(body)}`);
  }
  return res.headers;
}
