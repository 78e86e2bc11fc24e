// deno-lint-ignore-file no-console -- a command-line report
/**
 * `deno task bench`: HTTP throughput and latency of Bulwark on loopback.
 *
 * The servers run in this process; the load generator (wrk, or the Deno
 * fallback in `_load.ts`) always runs in a child process so it never shares
 * the server's event loop. Sections print markdown tables; add a section by
 * starting what it needs, calling {@linkcode measure} or
 * {@linkcode measureAlternating}, and passing the rows to {@linkcode printTable}.
 *
 * Sections:
 *   health  `GET /health`: full stack vs bare Hono vs bare Hono sending the
 *           contract's headers (goal: full ≥ 70% of bare).
 *   auth    (a) logins/s at 2×cores connections vs the bcrypt limit, cores ÷
 *           one verify's time measured in the same run (goal ≥ 85%);
 *           (b) `/health` p99 while 8 logins are in flight (goal < 25 ms);
 *           (c) `GET /users/me` with a Bearer token vs `/health` (goal ≥ 60%).
 *           Logins are counted by the server; on Linux the CPU each phase got
 *           (event loop, bcrypt workers, everything else) is printed too, since
 *           other work on a 2-core machine takes cores the limit counts on.
 *   ratelimit `GET /users/me` on an app with rate limiting on (limits raised so
 *           nothing is refused) vs one with `RATE_LIMIT_ENABLED=false`, two
 *           servers measured in turn; tokens of 32 users in turn (a bucket per
 *           user, the realistic case; goal ≥ 75%) and one user's token on every
 *           connection (one bucket, whose consumes the limiter serializes).
 *   apikeys `GET /users/me` with `X-API-Key` vs with a Bearer token, same app and
 *           the same 32 users (goal ≥ 90%).
 *           Both count every response on the server (anything but 200 fails the
 *           run), warm up once per server instead of before every run (more
 *           targets, same ~40 s) and print each best run's CPU per request by
 *           thread (event loop, KV's SQLite thread, other threads, the rest).
 *
 * Settings (flag, or env var, or default):
 *   --seconds=N        BENCH_SECONDS          5     measured seconds per run
 *   --warmup=N         BENCH_WARMUP_SECONDS   2     discarded seconds before each run
 *   --connections=N    BENCH_CONNECTIONS      16    concurrent keep-alive connections
 *   --threads=N        BENCH_THREADS          1     wrk threads (1 leaves a core to the server)
 *   --rounds=N         BENCH_ROUNDS           2     alternating runs per target
 *   --loader=X         BENCH_LOADER           auto  wrk | deno | auto (wrk, else deno)
 *   --bcrypt-rounds=N  BENCH_BCRYPT_ROUNDS    12    bcrypt cost of the auth section (10-31)
 *   --section=X        BENCH_SECTION          all   all | health | auth | ratelimit | apikeys
 */
import { securityHeaderList } from "../middleware/security_headers.ts";
import { benchUploads } from "./bench_uploads.ts";
import { Hono } from "hono";
import type { AppEnv } from "../middleware/app_env.ts";
import { createApp } from "../routes/app.ts";
import { createSystemClock } from "../services/core/clock.ts";
import { type Config, type ConfigIo, loadConfig } from "../services/config/config.ts";
import { startHttpServer } from "../server/http_server.ts";
import { createLogger } from "../services/core/logger.ts";
import { createLogMailer } from "../services/mail/mailer.ts";
import { createBcryptHasher } from "../services/identity/password_hasher.ts";
import type { LoadResult, LoadSpec, RequestVariant } from "./_load.ts";

/** Which process generates the load. */
export type LoaderKind = "wrk" | "deno";

/** How one measurement is driven. */
export interface MeasureOptions {
  loader: LoaderKind;
  seconds: number;
  warmupSeconds: number;
  connections: number;
  /** wrk threads; the Deno loader is single-threaded. */
  threads: number;
  /** @default "GET" */
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /**
   * Variants sent in turn, one per request, merged over `headers` and `body`
   * (e.g. the logins or tokens of many accounts). With one wrk thread (each
   * wrk thread rotates on its own) the requests in flight carry consecutive
   * variants, so N variants keep up to N requests in flight distinct.
   */
  rotate?: readonly RequestVariant[];
  /** Open loop at this many requests per second (Deno loader only). @default closed loop */
  rate?: number;
  /** wrk's per-request timeout. @default 5 */
  timeoutSeconds?: number;
}

/** One measured run; latencies in milliseconds. */
export interface Measurement {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  /** Responses with status >= 400 plus socket errors and timeouts. */
  errors: number;
}

/** One line of a report table. */
export interface Row {
  target: string;
  result: Measurement;
}

/** A named URL to load, for {@linkcode measureAlternating}. */
export interface Target {
  name: string;
  url: string;
  /** Request headers of this target, replacing the options' headers. */
  headers?: Record<string, string>;
  /** Per-request variants of this target (e.g. Bearer tokens); see {@linkcode MeasureOptions.rotate}. */
  rotate?: readonly RequestVariant[];
}

/** Callbacks around each run of {@linkcode measureAlternating}. */
export interface RunHooks {
  before?: (target: Target) => void;
  after?: (target: Target, result: Measurement) => void;
}

/** Which sections to run. */
export type SectionName = "all" | "health" | "auth" | "ratelimit" | "apikeys" | "uploads";

const SECTIONS: readonly SectionName[] = [
  "all",
  "health",
  "auth",
  "ratelimit",
  "apikeys",
  "uploads",
];

/** Resolved command-line / environment settings. */
export interface BenchSettings {
  seconds: number;
  warmupSeconds: number;
  connections: number;
  threads: number;
  rounds: number;
  loader: LoaderKind | "auto";
  bcryptRounds: number;
  section: SectionName;
}

const FLAGS = [
  "seconds",
  "warmup",
  "connections",
  "threads",
  "rounds",
  "loader",
  "bcrypt-rounds",
  "section",
];

/** Reads settings from `--name=value` / `--name value` flags, then env vars, then defaults. */
export function readSettings(args: readonly string[], env: Deno.Env): BenchSettings {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    // `deno task bench -- --flag` passes the separator through.
    if (arg === "--") continue;
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (match === null) throw new Error(`bench: unexpected argument ${arg}`);
    const name = match[1] ?? "";
    const inline = match[2];
    if (inline !== undefined) flags.set(name, inline);
    else flags.set(name, args[++i] ?? "");
  }
  const number = (
    flag: string,
    envName: string,
    fallback: number,
    min: number,
    max = Infinity,
  ): number => {
    const raw = flags.get(flag) ?? env.get(envName);
    if (raw === undefined || raw === "") return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max) {
      const range = max === Infinity ? `>= ${min}` : `in ${min}-${max}`;
      throw new Error(`bench: --${flag} / ${envName} must be a number ${range}, got ${raw}`);
    }
    return value;
  };
  const loader = flags.get("loader") ?? env.get("BENCH_LOADER") ?? "auto";
  if (loader !== "auto" && loader !== "wrk" && loader !== "deno") {
    throw new Error(`bench: --loader / BENCH_LOADER must be wrk, deno or auto, got ${loader}`);
  }
  const rawSection = flags.get("section") ?? env.get("BENCH_SECTION") ?? "all";
  const section = SECTIONS.find((name) => name === rawSection);
  if (section === undefined) {
    throw new Error(
      `bench: --section / BENCH_SECTION must be one of ${SECTIONS.join(", ")}, got ${rawSection}`,
    );
  }
  const settings: BenchSettings = {
    seconds: number("seconds", "BENCH_SECONDS", 5, 1),
    warmupSeconds: number("warmup", "BENCH_WARMUP_SECONDS", 2, 0),
    connections: Math.round(number("connections", "BENCH_CONNECTIONS", 16, 1)),
    threads: Math.round(number("threads", "BENCH_THREADS", 1, 1)),
    rounds: Math.round(number("rounds", "BENCH_ROUNDS", 2, 1)),
    loader,
    // The range loadConfig accepts for BCRYPT_ROUNDS.
    bcryptRounds: number("bcrypt-rounds", "BENCH_BCRYPT_ROUNDS", 12, 10, 31),
    section,
  };
  if (!Number.isInteger(settings.bcryptRounds)) {
    throw new Error(`bench: --bcrypt-rounds must be a whole number, got ${settings.bcryptRounds}`);
  }
  const unknown = [...flags.keys()].filter((name) => !FLAGS.includes(name));
  if (unknown.length > 0) throw new Error(`bench: unknown flag(s) --${unknown.join(", --")}`);
  // wrk refuses more threads than connections; whole seconds keep wrk's -d exact.
  settings.threads = Math.min(settings.threads, settings.connections);
  settings.seconds = Math.round(settings.seconds);
  settings.warmupSeconds = Math.round(settings.warmupSeconds);
  return settings;
}

async function hasWrk(): Promise<boolean> {
  try {
    await new Deno.Command("wrk", { args: ["--version"], stdout: "null", stderr: "null" })
      .output();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function aptGet(args: string[]): Promise<boolean> {
  const { success } = await new Deno.Command("apt-get", {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "null",
    stderr: "null",
  }).output().catch(() => ({ success: false }));
  return success;
}

/**
 * Picks the load generator: wrk when on PATH; when not, and running as root,
 * tries `apt-get install -y wrk` (after `apt-get update` if the first try
 * fails); otherwise the Deno fallback.
 */
export async function resolveLoader(wanted: LoaderKind | "auto"): Promise<LoaderKind> {
  if (wanted === "deno") return "deno";
  if (await hasWrk()) return "wrk";
  if (Deno.uid() === 0) {
    console.error("bench: wrk not found; trying apt-get install -y wrk …");
    const installed = await aptGet(["install", "-y", "-qq", "wrk"]) ||
      (await aptGet(["update", "-qq"]) && await aptGet(["install", "-y", "-qq", "wrk"]));
    if (installed && await hasWrk()) return "wrk";
  }
  if (wanted === "wrk") throw new Error("bench: --loader=wrk but wrk is not available");
  console.error("bench: wrk unavailable; falling back to the Deno loader (scripts/_load.ts)");
  return "deno";
}

/** Quotes text as a Lua string literal; every byte outside printable ASCII is a decimal escape. */
function luaString(text: string): string {
  let out = '"';
  for (const byte of new TextEncoder().encode(text)) {
    const printable = byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c;
    // Always three digits: Lua reads up to three, so a tab (9) before a "1" would read as 91.
    out += printable ? String.fromCharCode(byte) : `\\${String(byte).padStart(3, "0")}`;
  }
  return `${out}"`;
}

const WRK_MARKER = "BENCH_JSON ";

/** A wrk script that sets the request and prints exact counts and percentiles (µs) as JSON. */
function wrkScript(options: MeasureOptions): string {
  const lines = [`wrk.method = ${luaString(options.method ?? "GET")}`];
  if (options.body !== undefined) lines.push(`wrk.body = ${luaString(options.body)}`);
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  }
  if (options.rotate !== undefined && options.rotate.length > 0) {
    const variants = options.rotate.map((variant) => {
      const headers = Object.entries({ ...options.headers, ...variant.headers })
        .map(([name, value]) => `[${luaString(name)}] = ${luaString(value)}`);
      const body = variant.body ?? options.body;
      return `{ headers = { ${headers.join(", ")} }` +
        `${body === undefined ? "" : `, body = ${luaString(body)}`} }`;
    });
    lines.push(
      `local variants = {\n  ${variants.join(",\n  ")},\n}`,
      "local turn = 0",
      "request = function()",
      "  turn = turn % #variants + 1",
      "  local v = variants[turn]",
      "  return wrk.format(nil, nil, v.headers, v.body)",
      "end",
    );
  }
  lines.push(
    "done = function(summary, latency, requests)",
    "  local e = summary.errors",
    `  io.write(string.format(${
      luaString(
        `${WRK_MARKER}{"requests":%d,"duration_us":%d,"socket_errors":%d,` +
          `"status_errors":%d,"p50_us":%.3f,"p99_us":%.3f}\n`,
      )
    },`,
    "    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,",
    "    e.status, latency:percentile(50), latency:percentile(99)))",
    "end",
  );
  return lines.join("\n") + "\n";
}

interface WrkSummary {
  requests: number;
  duration_us: number;
  socket_errors: number;
  status_errors: number;
  p50_us: number;
  p99_us: number;
}

/** A load generator running in a child process. */
interface RunningLoad {
  /** Ends the run early (SIGINT); `done` still resolves with what was measured. */
  stop(): void;
  done: Promise<Measurement>;
}

function interrupter(child: Deno.ChildProcess): () => void {
  return () => {
    try {
      child.kill("SIGINT");
    } catch (error) {
      // Already exited: nothing to stop.
      if (!(error instanceof TypeError)) throw error;
    }
  };
}

/** Starts wrk for `seconds`; on SIGINT wrk stops early and still reports. */
async function startWrk(
  url: string,
  seconds: number,
  options: MeasureOptions,
): Promise<RunningLoad> {
  if (options.rate !== undefined) throw new Error("bench: wrk has no open-loop mode");
  if (options.rotate !== undefined && Math.min(options.threads, options.connections) > 1) {
    throw new Error("bench: a rotation needs one wrk thread (each thread rotates on its own)");
  }
  // makeTempFile creates the file 0600, so headers (e.g. tokens) stay private.
  const script = await Deno.makeTempFile({ prefix: "bulwark-bench-", suffix: ".lua" });
  let child: Deno.ChildProcess;
  try {
    await Deno.writeTextFile(script, wrkScript(options));
    const args = [
      `--threads=${Math.min(options.threads, options.connections)}`,
      `--connections=${options.connections}`,
      `--duration=${seconds}s`,
      `--timeout=${options.timeoutSeconds ?? 5}s`,
      `--script=${script}`,
      url,
    ];
    child = new Deno.Command("wrk", { args, stdout: "piped", stderr: "piped" }).spawn();
  } catch (error) {
    await Deno.remove(script).catch(() => {});
    throw error;
  }
  const done = (async (): Promise<Measurement> => {
    try {
      const out = await child.output();
      const text = new TextDecoder().decode(out.stdout);
      const line = text.split("\n").find((l) => l.startsWith(WRK_MARKER));
      // wrk exits 0 after SIGINT too; without the marker line it did not finish.
      if (line === undefined) {
        throw new Error(`bench: wrk failed:\n${text}${new TextDecoder().decode(out.stderr)}`);
      }
      const s = JSON.parse(line.slice(WRK_MARKER.length)) as WrkSummary;
      return {
        rps: s.requests / (s.duration_us / 1e6),
        p50: s.p50_us / 1000,
        p99: s.p99_us / 1000,
        requests: s.requests,
        errors: s.socket_errors + s.status_errors,
      };
    } finally {
      await Deno.remove(script).catch(() => {});
    }
  })();
  return { stop: interrupter(child), done };
}

/** Starts the Deno loader (`warmupSeconds` discarded, then `seconds` measured). */
async function startDenoLoader(url: string, options: MeasureOptions): Promise<RunningLoad> {
  const spec: LoadSpec = {
    url,
    connections: options.connections,
    warmupSeconds: options.warmupSeconds,
    seconds: options.seconds,
    ...(options.rate === undefined ? {} : { rate: options.rate }),
    ...(options.method === undefined ? {} : { method: options.method }),
    ...(options.headers === undefined ? {} : { headers: options.headers }),
    ...(options.body === undefined ? {} : { body: options.body }),
    ...(options.rotate === undefined ? {} : { rotate: [...options.rotate] }),
  };
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-net", new URL("./_load.ts", import.meta.url).pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // The spec goes through stdin, so headers (e.g. tokens) never reach the process list.
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(spec)));
  await writer.close();
  const done = (async (): Promise<Measurement> => {
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) {
      throw new Error(`bench: Deno loader failed:\n${text}${new TextDecoder().decode(out.stderr)}`);
    }
    const r = JSON.parse(text) as LoadResult;
    return {
      rps: r.rps,
      p50: r.p50,
      p99: r.p99,
      requests: r.requests,
      errors: r.statusErrors + r.socketErrors,
    };
  })();
  return { stop: interrupter(child), done };
}

/** Starts a load of `seconds` with no warmup, for loads the server itself measures. */
function startLoad(url: string, seconds: number, options: MeasureOptions): Promise<RunningLoad> {
  return options.loader === "wrk"
    ? startWrk(url, seconds, options)
    : startDenoLoader(url, { ...options, warmupSeconds: 0, seconds });
}

function assertNoFailures(url: string, result: Measurement): void {
  if (result.errors > 0 || result.requests === 0) {
    throw new Error(
      `bench: ${url}: ${result.errors} failed of ${result.requests} requests; fix the target first`,
    );
  }
}

/**
 * Loads `url` from a child process: `warmupSeconds` discarded, then
 * `seconds` measured. Throws when any request failed, since a rate of
 * errors is not a rate of work.
 */
export async function measure(url: string, options: MeasureOptions): Promise<Measurement> {
  let result: Measurement;
  if (options.loader === "wrk") {
    // wrk has no warmup option: a separate, discarded run warms JIT and connections.
    if (options.warmupSeconds > 0) {
      await (await startWrk(url, options.warmupSeconds, options)).done;
    }
    result = await (await startWrk(url, options.seconds, options)).done;
  } else {
    result = await (await startDenoLoader(url, options)).done;
  }
  assertNoFailures(url, result);
  return result;
}

/**
 * Measures each target `rounds` times, interleaved (A, B, A, B, …), and keeps
 * each target's best run by req/s, with that same run's latencies.
 *
 * Why interleave and keep the best: on a 2-core machine shared with other
 * work (editors, test runs, the loader itself), noise only ever takes
 * throughput away, never adds it. Interleaving spreads a slow patch across
 * targets instead of penalising whichever ran during it, and the maximum is
 * the run least disturbed, the closest estimate of what the code can do.
 * The median needs ≥3 runs per target to reject an outlier, which would push
 * the bench past a minute.
 *
 * `hooks.before` and `hooks.after`, when given, run right before and after
 * each run (its warmup included), e.g. to sample CPU or check what the server
 * counted; `after` may throw to stop at once.
 */
export async function measureAlternating(
  targets: readonly Target[],
  options: MeasureOptions,
  rounds: number,
  hooks: RunHooks = {},
): Promise<{ best: Row[]; runs: Row[] }> {
  const runs: Row[] = [];
  const best = new Map<string, Measurement>();
  for (let round = 1; round <= rounds; round++) {
    for (const target of targets) {
      const targetOptions: MeasureOptions = {
        ...options,
        ...(target.headers === undefined ? {} : { headers: target.headers }),
        ...(target.rotate === undefined ? {} : { rotate: target.rotate }),
      };
      hooks.before?.(target);
      const result = await measure(target.url, targetOptions);
      hooks.after?.(target, result);
      runs.push({ target: `${target.name} (run ${round})`, result });
      const previous = best.get(target.name);
      if (previous === undefined || result.rps > previous.rps) best.set(target.name, result);
    }
  }
  return {
    best: targets.map((t) => ({ target: t.name, result: best.get(t.name) as Measurement })),
    runs,
  };
}

/** Prints rows as an aligned markdown table: target, req/s, p50 ms, p99 ms ("–" when unknown). */
export function printTable(rows: readonly Row[]): void {
  const header = ["target", "req/s", "p50 ms", "p99 ms"];
  const fixed = (value: number, digits: number): string =>
    Number.isFinite(value) ? value.toFixed(digits) : "–";
  const body = rows.map((r) => [
    r.target,
    !Number.isFinite(r.result.rps)
      ? "–"
      : r.result.rps < 100
      ? r.result.rps.toFixed(2)
      : Math.round(r.result.rps).toLocaleString("en-US"),
    fixed(r.result.p50, 3),
    fixed(r.result.p99, 3),
  ]);
  printGrid(header, body);
}

/** Prints an aligned markdown table: the first column left-aligned, the rest right-aligned. */
function printGrid(header: readonly string[], body: readonly string[][]): void {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...body.map((cells) => (cells[i] ?? "").length))
  );
  const line = (cells: readonly string[]): string =>
    `| ${
      cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(
        " | ",
      )
    } |`;
  console.log(line(header));
  console.log(
    `|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`,
  );
  for (const cells of body) console.log(line(cells));
}

function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`;
}

function verdict(met: boolean): string {
  return met ? "met" : "NOT met";
}

/** Config I/O that reads no file and writes nothing, so a local .env cannot skew the bench. */
const NO_DISK: ConfigIo = { readTextFile: () => null, writeSecretFile: () => {} };

/**
 * The bench's config. Rate limits (API.md: 5/minute per IP and per account for
 * logins, per-minute budgets for the rest) would refuse almost every bench
 * request, since all of them come from 127.0.0.1 for one account; they are
 * raised rather than disabled, so the limiter's bookkeeping stays in the
 * measured cost. loadConfig ignores names it does not know, so each entry is
 * harmless until the setting exists.
 */
function benchConfig(extra: Record<string, string> = {}): Config {
  const unlimited = "1000000/second";
  return loadConfig({
    APP_ENV: "test",
    JWT_ACCESS_SECRET: "bench-access-secret-0123456789abcdef01234567",
    JWT_REFRESH_SECRET: "bench-refresh-secret-0123456789abcdef0123456",
    LOG_LEVEL: "error",
    RATE_LIMIT_LOGIN: unlimited,
    RATE_LIMIT_AUTHENTICATED: unlimited,
    RATE_LIMIT_ANONYMOUS: unlimited,
    ...extra,
  }, { io: NO_DISK });
}

const HEALTH_BODY = JSON.stringify({ status: "ok" });

/**
 * The headers Bulwark sends on every JSON response (API.md, as written by
 * `middleware/security_headers.ts`, `cors.ts` and `request_context.ts`),
 * except `X-Request-ID`, which is per request. The health section checks this
 * list against a real response and says so when they drift apart.
 */
const CONTRACT_HEADERS: [string, string][] = [
  ["Content-Type", "application/json; charset=utf-8"],
  ...securityHeaderList(),
  ["Vary", "Origin"],
];

/** A bare Hono app whose `/health` writes the contract's headers straight into the Response. */
function contractHeadersApp(): Hono {
  // Same id shape as request_context.ts (8-char prefix, base-36 counter), so same bytes.
  const prefix = crypto.randomUUID().slice(0, 8);
  let counter = 0;
  return new Hono().get("/health", () =>
    new Response(HEALTH_BODY, {
      headers: [
        ...CONTRACT_HEADERS,
        ["X-Request-ID", `${prefix}-${(++counter).toString(36).padStart(6, "0")}`],
      ],
    }));
}

/** Headers whose values differ between two responses, ignoring per-response ones. */
function headerDrift(full: Headers, contract: Headers): string[] {
  const perResponse = new Set(["date", "content-length", "x-request-id"]);
  const names = new Set([...full.keys(), ...contract.keys()]);
  const drift: string[] = [];
  for (const name of [...names].sort()) {
    if (perResponse.has(name)) continue;
    const a = full.get(name);
    const b = contract.get(name);
    if (a !== b) drift.push(`${name} (full: ${a ?? "absent"}; list: ${b ?? "absent"})`);
  }
  for (const name of ["x-request-id"]) {
    if (full.has(name) !== contract.has(name)) drift.push(`${name} present in only one`);
  }
  return drift;
}

/** Section 1: `GET /health` through the full middleware stack vs bare Hono, with and without headers. */
async function healthSection(settings: BenchSettings, options: MeasureOptions): Promise<void> {
  const logger = createLogger({ level: "error" });
  const config = benchConfig();
  const kv = await Deno.openKv(":memory:");
  // The production hasher (worker pool, configured rounds), as main.ts builds it;
  // idle during /health, as in production between logins.
  const hasher = createBcryptHasher({ rounds: config.bcryptRounds });
  // Mail is logged, as main.ts does without SMTP_URL; no bench path sends any.
  const mailer = createLogMailer(logger);
  const app = createApp({ config, kv, clock: createSystemClock(), hasher, mailer, logger });
  const bareApp = new Hono().get("/health", (c) => c.json({ status: "ok" }));
  const contractApp = contractHeadersApp();
  // All go through startHttpServer, so the only difference is the app.
  const common = { hostname: "127.0.0.1", port: 0, logger, shutdownTimeoutMs: 2000 };
  const full = startHttpServer({ ...common, handler: (req, info) => app.fetch(req, info) });
  const bare = startHttpServer({ ...common, handler: (req) => bareApp.fetch(req) });
  const contract = startHttpServer({ ...common, handler: (req) => contractApp.fetch(req) });
  try {
    const targets: Target[] = [
      { name: "bare Hono GET /health", url: `http://127.0.0.1:${bare.addr.port}/health` },
      {
        name: "bare Hono + contract headers GET /health",
        url: `http://127.0.0.1:${contract.addr.port}/health`,
      },
      { name: "full Bulwark GET /health", url: `http://127.0.0.1:${full.addr.port}/health` },
    ];
    const responses: Headers[] = [];
    for (const t of targets) {
      const res = await fetch(t.url);
      const body = await res.text();
      if (res.status !== 200 || JSON.parse(body).status !== "ok") {
        throw new Error(`bench: ${t.url} answered ${res.status} ${body}`);
      }
      responses.push(res.headers);
    }
    const { best, runs } = await measureAlternating(targets, options, settings.rounds);
    console.log(`\n## GET /health: full middleware stack vs bare Hono\n`);
    console.log(`Best of ${settings.rounds} interleaved run(s) per target, by req/s:\n`);
    printTable(best);
    const [bareBest, contractBest, fullBest] = best;
    if (bareBest !== undefined && contractBest !== undefined && fullBest !== undefined) {
      const ratio = fullBest.result.rps / bareBest.result.rps;
      const isolated = fullBest.result.rps / contractBest.result.rps;
      const count = CONTRACT_HEADERS.length + 1;
      const bytes = [...CONTRACT_HEADERS, ["X-Request-ID", "xxxxxxxx-000000"]]
        .reduce((sum, [name, value]) => sum + `${name}: ${value}\r\n`.length, 0);
      console.log(
        `\nfull/bare throughput: ${percent(ratio)} (goal ≥ 70%: ${verdict(ratio >= 0.7)})`,
      );
      console.log(`full/(bare + contract headers) throughput: ${percent(isolated)}`);
      console.log(
        `note: Deno's HTTP server cost grows with the number and size of response headers, and ` +
          `the API contract mandates ${count} headers (${bytes} bytes) on every response; ` +
          `full/(bare + contract headers) isolates what Hono routing and Bulwark's middleware add.`,
      );
    }
    const drift = headerDrift(responses[2] ?? new Headers(), responses[1] ?? new Headers());
    if (drift.length > 0) {
      console.log(
        `warning: the contract-header target no longer matches the full app's /health ` +
          `headers; update CONTRACT_HEADERS in scripts/bench.ts: ${drift.join(", ")}`,
      );
    }
    console.log(`\nAll runs, in order:\n`);
    printTable(runs);
  } finally {
    await full.shutdown();
    await bare.shutdown();
    await contract.shutdown();
    mailer.close();
    hasher.close();
    kv.close();
  }
}

/**
 * Server-side bookkeeping of `POST /auth/login`: how many are in flight (and
 * its time integral, for averages), when each 200 completed, and every status.
 */
class LoginMeter {
  inFlight = 0;
  /** Logins in flight integrated over time, in login·ms. */
  #area = 0;
  #last = performance.now();
  /** `performance.now()` of every 200, in order. */
  readonly completions: number[] = [];
  readonly statuses = new Map<number, number>();

  #tick(): number {
    const now = performance.now();
    this.#area += this.inFlight * (now - this.#last);
    this.#last = now;
    return now;
  }
  enter(): void {
    this.#tick();
    this.inFlight++;
  }
  /** `status` 0: the app threw instead of answering. */
  leave(status: number): void {
    const now = this.#tick();
    this.inFlight--;
    if (status === 200) this.completions.push(now);
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
  }
  /** The in-flight integral up to now, for {@linkcode LoginMeter.average}. */
  area(): number {
    this.#tick();
    return this.#area;
  }
  /** Average logins in flight since `(area, at)` was taken. */
  average(since: { area: number; at: number }): number {
    const area = this.area();
    return (area - since.area) / (performance.now() - since.at);
  }
  mark(): { area: number; at: number } {
    return { area: this.area(), at: performance.now() };
  }
  /** Throws unless every login answered 200 (a refused login is not a login). */
  assertAllOk(): void {
    const bad = [...this.statuses].filter(([status]) => status !== 200);
    if (bad.length === 0) return;
    const counts = bad.map(([status, n]) => `${n}× ${status === 0 ? "exception" : status}`);
    throw new Error(
      `bench: POST /auth/login answered ${counts.join(", ")}; every login must succeed ` +
        `(a 429 means a rate limit or lockout the bench does not raise yet: see benchConfig)`,
    );
  }
}

/**
 * Successful completions per second in `[from, to]` (ms): the least-squares
 * slope of the running count against time. Unlike count ÷ window, it does not
 * jump by a whole batch when the pool's workers finish together at an edge.
 */
function completionRate(stamps: readonly number[], from: number, to: number): {
  rate: number;
  count: number;
} {
  const t = stamps.filter((s) => s >= from && s <= to);
  const n = t.length;
  if (n < 3) return { rate: n / ((to - from) / 1000), count: n };
  const meanT = t.reduce((sum, s) => sum + s, 0) / n;
  const meanI = (n - 1) / 2;
  let cov = 0;
  let variance = 0;
  t.forEach((s, i) => {
    cov += (s - meanT) * (i - meanI);
    variance += (s - meanT) ** 2;
  });
  return { rate: (cov / variance) * 1000, count: n };
}

async function waitFor(what: string, ready: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!ready()) {
    if (performance.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[mid] ?? Number.NaN
    : ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2;
}

/** CPU time so far, in seconds: this process's threads by kind, and the whole machine. */
interface CpuSample {
  at: number;
  /** The event loop (the main thread). */
  main: number;
  /** Web Worker threads (`worker-N`): the bcrypt pool. */
  workers: number;
  /** Deno KV's SQLite thread(s) (`sw-N`), where store reads and commits run. */
  kv: number;
  /** Every thread of this process (adds V8's GC and compiler threads). */
  self: number;
  /** Busy time of every CPU of the machine. */
  busy: number;
}

/** Linux USER_HZ: the unit of /proc CPU times. */
const CLOCK_TICKS = 100;

/** utime + stime of a /proc stat line, in seconds, with the thread's name. */
function procTimes(stat: string): { name: string; seconds: number } {
  const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
  // Fields after "(comm) " start at field 3 (state); utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { name, seconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS };
}

/** Reads /proc (Linux); null elsewhere, and the CPU lines are then left out. */
function cpuSample(): CpuSample | null {
  try {
    let main = 0;
    let workers = 0;
    let kv = 0;
    for (const task of Deno.readDirSync("/proc/self/task")) {
      const times = procTimes(Deno.readTextFileSync(`/proc/self/task/${task.name}/stat`));
      if (task.name === String(Deno.pid)) main += times.seconds;
      else if (times.name.startsWith("worker-")) workers += times.seconds;
      else if (times.name.startsWith("sw-")) kv += times.seconds;
    }
    const self = procTimes(Deno.readTextFileSync("/proc/self/stat")).seconds;
    const cpu = (Deno.readTextFileSync("/proc/stat").split("\n")[0] ?? "").trim().split(/\s+/)
      .slice(1, 9).map(Number);
    // user nice system idle iowait irq softirq steal; guest time is already in user.
    const total = cpu.reduce((sum, ticks) => sum + ticks, 0);
    const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
    const sample = {
      at: performance.now(),
      main,
      workers,
      kv,
      self,
      busy: (total - idle) / CLOCK_TICKS,
    };
    return Object.values(sample).every(Number.isFinite) ? sample : null;
  } catch {
    return null;
  }
}

/** "CPU meanwhile" line: cores used since `start` by this process's threads and by the rest. */
function cpuLine(start: CpuSample | null, cores: number): string | null {
  const end = cpuSample();
  if (start === null || end === null) return null;
  const seconds = (end.at - start.at) / 1000;
  const rate = (key: "main" | "workers" | "self" | "busy") =>
    Math.max(0, (end[key] - start[key]) / seconds);
  const self = rate("self");
  return `CPU meanwhile, in cores of ${cores}: event loop ${rate("main").toFixed(2)}, ` +
    `worker threads (bcrypt) ${rate("workers").toFixed(2)}, this process in all ` +
    `${self.toFixed(2)}; everything else (loaders, other work on the machine) ` +
    `${Math.max(0, rate("busy") - self).toFixed(2)}`;
}

/** Requests per second of the open-loop `/health` probe in section 2 (b). */
const PROBE_RATE = 200;
/** The bench account's password: passes the policy (as tests' GOOD_PASSWORD). */
const BENCH_PASSWORD = "Correct-Horse-42-Battery!";
/** One User-Agent for every auth request: sessions are fingerprinted by it. */
const BENCH_USER_AGENT = "bulwark-bench/1";
/** Verifies timed one at a time for one hash's time (half before, half after the login load). */
const VERIFY_SAMPLES = 6;

/** Section 2: login throughput vs the bcrypt limit, /health under login load, /users/me. */
async function authSection(settings: BenchSettings, options: MeasureOptions): Promise<void> {
  const cores = navigator.hardwareConcurrency;
  const logger = createLogger({ level: "error" });
  const config = benchConfig({ BCRYPT_ROUNDS: String(settings.bcryptRounds) });
  const kv = await Deno.openKv(":memory:");
  // The production hasher: a worker pool of one thread per core at the configured cost.
  const hasher = createBcryptHasher({ rounds: config.bcryptRounds });
  // Mail is logged, as main.ts does without SMTP_URL; no bench path sends any.
  const mailer = createLogMailer(logger);
  const app = createApp({ config, kv, clock: createSystemClock(), hasher, mailer, logger });
  const meter = new LoginMeter();
  const meteredLogin = async (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => {
    meter.enter();
    let status = 0;
    try {
      const res = await app.fetch(req, info);
      status = res.status;
      return res;
    } finally {
      meter.leave(status);
    }
  };
  const server = startHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    logger,
    shutdownTimeoutMs: 2000,
    // GETs go straight to the app, as in the health section; only logins are counted.
    handler: (req, info) =>
      req.method === "POST" && new URL(req.url).pathname === "/auth/login"
        ? meteredLogin(req, info)
        : app.fetch(req, info),
  });
  const origin = `http://127.0.0.1:${server.addr.port}`;
  const loads: RunningLoad[] = [];
  try {
    // One account per login in flight, and then some: the lockout service lets
    // one login per account run at a time (others get 429 login_throttled), so
    // the load rotates through twice as many accounts as requests in flight, and
    // in-flight requests (consecutive in the rotation) never share one.
    const accounts = 2 * Math.max(8, 2 * cores, settings.connections);
    const run = crypto.randomUUID().slice(0, 8);
    const emails = Array.from(
      { length: accounts },
      (_, i) => `bench-${run}-${String(i).padStart(3, "0")}@example.com`,
    );
    // `cores` at a time keeps both workers hashing; a wider burst from one IP
    // loses the rate limiter's KV commit races and is refused (429).
    for (let i = 0; i < emails.length; i += cores) {
      const batch = await Promise.allSettled(
        emails.slice(i, i + cores).map(async (email) => {
          const res = await app.request("/auth/register", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ email, password: BENCH_PASSWORD, display_name: "Bench" }),
          });
          if (res.status !== 201) {
            throw new Error(`bench: register answered ${res.status} ${await res.text()}`);
          }
        }),
      );
      for (const outcome of batch) if (outcome.status === "rejected") throw outcome.reason;
    }
    const loginBody = (email: string) => JSON.stringify({ email, password: BENCH_PASSWORD });

    // One hash's time, in this run: warm every worker (JIT), then time verifies
    // one at a time through the same pool the logins use, so one core works.
    // Half the samples are taken after (a), so a slow patch on a shared machine
    // weighs on both sides of the ratio rather than on one.
    const hash = await hasher.hash(BENCH_PASSWORD);
    await Promise.all(Array.from({ length: cores }, () => hasher.verify(BENCH_PASSWORD, hash)));
    const samples: number[] = [];
    const timeVerifies = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        const started = performance.now();
        if (!await hasher.verify(BENCH_PASSWORD, hash)) throw new Error("bench: verify failed");
        samples.push(performance.now() - started);
      }
    };
    await timeVerifies(Math.ceil(VERIFY_SAMPLES / 2));

    const loginOptions: MeasureOptions = {
      ...options,
      method: "POST",
      headers: { "Content-Type": "application/json", "User-Agent": BENCH_USER_AGENT },
      rotate: emails.map((email) => ({ body: loginBody(email) })),
      // One wrk thread, so the rotation is one sequence (see MeasureOptions.rotate).
      threads: 1,
      connections: 2 * cores,
      // Queued logins wait for a worker: allow many hashes' time before calling one lost.
      timeoutSeconds: Math.max(10, Math.ceil((median(samples) / 1000) * 8 * 4)),
    };
    const loginUrl = `${origin}/auth/login`;
    const healthUrl = `${origin}/health`;

    // (a) Logins/s at 2×cores connections, counted by the server over a window
    // after the warmup, inside one continuous load: wrk's separate warmup run
    // would leave its abandoned logins queued in the pool at the measured start.
    const windowSeconds = Math.max(10, 2 * settings.seconds);
    const loadStarted = performance.now();
    const loginCpu = cpuSample();
    const loginLoad = await startLoad(
      loginUrl,
      settings.warmupSeconds + windowSeconds + 1,
      loginOptions,
    );
    loads.push(loginLoad);
    const loginClient = await loginLoad.done;
    const loginCpuLine = cpuLine(loginCpu, cores);
    meter.assertAllOk();
    assertNoFailures(loginUrl, loginClient);
    const from = loadStarted + settings.warmupSeconds * 1000;
    const logins = completionRate(meter.completions, from, from + windowSeconds * 1000);
    await waitFor("abandoned logins to finish", () => meter.inFlight === 0, 60_000);
    await timeVerifies(Math.floor(VERIFY_SAMPLES / 2));
    const verifyMs = median(samples);
    const limit = cores / (verifyMs / 1000);

    // (b) /health latency while exactly 8 logins are in flight: an open-loop
    // probe (fixed schedule, so an event-loop stall cannot hide below p99 as it
    // does in a closed loop), first on the idle server, then under the load.
    const probeOptions: MeasureOptions = {
      ...options,
      loader: "deno",
      rate: PROBE_RATE,
      connections: 1,
    };
    const probeIdle = await measure(healthUrl, probeOptions);
    const background = await startLoad(loginUrl, 3600, { ...loginOptions, connections: 8 });
    loads.push(background);
    await waitFor("8 logins in flight", () => meter.inFlight >= 8, 10_000);
    const mark = meter.mark();
    const probeCpu = cpuSample();
    const probeLoaded = await measure(healthUrl, probeOptions);
    const inFlight = meter.average(mark);
    const probeCpuLine = cpuLine(probeCpu, cores);
    background.stop();
    const backgroundResult = await background.done;
    meter.assertAllOk();
    assertNoFailures(loginUrl, backgroundResult);
    await waitFor("abandoned logins to finish", () => meter.inFlight === 0, 60_000);

    // (c) GET /users/me with a Bearer token vs /health. One token per account,
    // in turn: one user's requests share one rate-limit bucket in KV, and 16 at
    // once lose each other's commit races until the limiter refuses some (429),
    // which would measure contention on one key, not the endpoint. Tokens come
    // from logins after (a) and (b), over the loopback like the load: sessions
    // are capped per user (the oldest end) and fingerprinted by User-Agent.
    const tokens: string[] = [];
    for (let i = 0; i < emails.length; i += cores) {
      const batch = await Promise.allSettled(
        emails.slice(i, i + cores).map(async (email) => {
          const res = await fetch(loginUrl, {
            method: "POST",
            headers: loginOptions.headers ?? {},
            body: loginBody(email),
          });
          const pair = await res.json() as { access_token?: unknown };
          if (res.status !== 200 || typeof pair.access_token !== "string") {
            // Never print a token; a refusal's problem body contains none.
            throw new Error(`bench: login for a token answered ${res.status}`);
          }
          const headers = { "Authorization": `Bearer ${pair.access_token}` };
          const me = await fetch(`${origin}/users/me`, {
            headers: { ...headers, "User-Agent": BENCH_USER_AGENT },
          });
          const body = await me.json() as { email?: unknown };
          if (me.status !== 200 || body.email !== email) {
            throw new Error(`bench: GET /users/me answered ${me.status} ${JSON.stringify(body)}`);
          }
          tokens.push(pair.access_token);
        }),
      );
      for (const outcome of batch) if (outcome.status === "rejected") throw outcome.reason;
    }
    const targets: Target[] = [
      { name: "GET /health", url: healthUrl },
      {
        name: `GET /users/me (Bearer, ${tokens.length} users in turn)`,
        url: `${origin}/users/me`,
        rotate: tokens.map((token) => ({ headers: { "Authorization": `Bearer ${token}` } })),
      },
    ];
    // One wrk thread for both targets: a rotation needs it, and the ratio needs equal loaders.
    const sameUserAgent = { ...options, threads: 1, headers: { "User-Agent": BENCH_USER_AGENT } };
    const { best, runs } = await measureAlternating(targets, sameUserAgent, settings.rounds);

    console.log(`\n## Auth: logins, /health under login load, GET /users/me\n`);
    console.log(
      `bcrypt cost ${config.bcryptRounds}; one verify: ${verifyMs.toFixed(1)} ms (median of ` +
        `${samples.length}, range ${Math.min(...samples).toFixed(0)}-` +
        `${Math.max(...samples).toFixed(0)} ms, one at a time through the worker pool, half ` +
        `before and half after (a)) → limit ${cores} core(s) ÷ ${(verifyMs / 1000).toFixed(3)} s ` +
        `= ${limit.toFixed(2)} logins/s\n`,
    );
    console.log(`### (a) POST /auth/login at ${2 * cores} connections (2 × cores)\n`);
    printTable([
      {
        target: "bcrypt limit (cores ÷ one verify)",
        result: { rps: limit, p50: verifyMs, p99: Number.NaN, requests: 0, errors: 0 },
      },
      {
        target: `POST /auth/login, ${2 * cores} connections`,
        result: { ...loginClient, rps: logins.rate },
      },
    ]);
    const loginRatio = logins.rate / limit;
    console.log(
      `\nlogins/s: ${logins.count} successful logins in a ${windowSeconds} s window after ` +
        `${settings.warmupSeconds} s warmup, counted by the server (least-squares rate); ` +
        `every login answered 200; latencies from the client`,
    );
    if (loginCpuLine !== null) {
      console.log(`${loginCpuLine}; the limit assumes all ${cores} cores for bcrypt`);
    }
    console.log(
      `goal (a) logins/s ≥ 85% of the bcrypt limit: ${percent(loginRatio)} — ` +
        verdict(loginRatio >= 0.85),
    );

    console.log(`\n### (b) GET /health at ${PROBE_RATE} req/s (open loop) while logins run\n`);
    printTable([
      { target: "GET /health, idle server", result: probeIdle },
      { target: "GET /health, 8 logins in flight", result: probeLoaded },
      { target: "POST /auth/login, 8 connections (the load)", result: backgroundResult },
    ]);
    console.log(
      `\nlogins in flight during the loaded probe: ${inFlight.toFixed(2)} on average ` +
        `(server-side, time-weighted); probe by scripts/_load.ts in a child process, ` +
        `${settings.warmupSeconds} s warmup + ${settings.seconds} s measured`,
    );
    if (probeCpuLine !== null) console.log(probeCpuLine);
    console.log(
      `goal (b) /health p99 < 25 ms with 8 logins in flight: ` +
        `${probeLoaded.p99.toFixed(2)} ms — ${verdict(probeLoaded.p99 < 25)}`,
    );

    console.log(`\n### (c) GET /users/me with a Bearer token vs GET /health, same app\n`);
    console.log(`Best of ${settings.rounds} interleaved run(s) per target, by req/s:\n`);
    printTable(best);
    const [healthBest, meBest] = best;
    if (healthBest !== undefined && meBest !== undefined) {
      const ratio = meBest.result.rps / healthBest.result.rps;
      console.log(
        `\ngoal (c) /users/me ≥ 60% of /health throughput: ${percent(ratio)} — ` +
          verdict(ratio >= 0.6),
      );
    }
    console.log(`\nAll runs, in order:\n`);
    printTable(runs);
  } finally {
    for (const load of loads) load.stop();
    await Promise.allSettled(loads.map((load) => load.done));
    await server.shutdown();
    mailer.close();
    hasher.close();
    kv.close();
  }
}

/**
 * Counts, on the server, every response that was not 200 (and every exception),
 * so a refusal can never pass for throughput: wrk only counts statuses ≥ 400.
 */
class StatusTally {
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

/** CPU time one run spent per request, in µs, by where it went. */
interface CpuCost {
  eventLoop: number;
  /** Deno KV's SQLite thread. */
  kv: number;
  /** This process's other threads: V8's GC and compiler, the blocking pool (WebCrypto). */
  otherThreads: number;
  /** The rest of the machine: the load generator, and any other work. */
  rest: number;
}

/**
 * Samples CPU (Linux /proc) around each run of {@linkcode measureAlternating}
 * and keeps each run's {@linkcode CpuCost}: CPU time over the run ÷ the
 * requests it measured. Use with runs that have no warmup of their own, or the
 * warmup's CPU is charged to the measured requests.
 */
class CpuMeter {
  readonly costs = new Map<Measurement, CpuCost>();
  #start: CpuSample | null = null;

  /** Call right before a run. */
  start(): void {
    this.#start = cpuSample();
  }

  /** Call right after the run that measured `result`. */
  stop(result: Measurement): void {
    const start = this.#start;
    const end = cpuSample();
    if (start === null || end === null || result.requests === 0) return;
    const perRequest = (seconds: number) => (Math.max(0, seconds) * 1e6) / result.requests;
    const main = end.main - start.main;
    const kv = end.kv - start.kv;
    const self = end.self - start.self;
    this.costs.set(result, {
      eventLoop: perRequest(main),
      kv: perRequest(kv),
      otherThreads: perRequest(self - main - kv),
      rest: perRequest(end.busy - start.busy - self),
    });
  }

  /** Hooks for {@linkcode measureAlternating} that sample every run and check the tally. */
  hooks(tally: StatusTally): RunHooks {
    return {
      before: () => this.start(),
      after: (target, result) => {
        this.stop(result);
        tally.assertAllOk(target.name);
      },
    };
  }

  /** The cost of a measured run, if it was sampled. */
  of(row: Row | undefined): CpuCost | undefined {
    return row === undefined ? undefined : this.costs.get(row.result);
  }

  /** Prints each row's CPU per request; says so when /proc was not readable. */
  print(rows: readonly Row[]): void {
    const sampled = rows.filter((row) => this.costs.has(row.result));
    if (sampled.length === 0) {
      console.log("(CPU per request unavailable: needs Linux /proc)");
      return;
    }
    const us = (value: number) => value.toFixed(1);
    printGrid(
      ["target", "event loop", "KV thread", "other threads", "rest of machine", "total"],
      sampled.map((row) => {
        const c = this.costs.get(row.result) as CpuCost;
        return [
          row.target,
          us(c.eventLoop),
          us(c.kv),
          us(c.otherThreads),
          us(c.rest),
          us(c.eventLoop + c.kv + c.otherThreads + c.rest),
        ];
      }),
    );
  }
}

/** "+12.3 µs event loop, …": what `b` costs per request beyond `a`. */
function cpuDelta(a: CpuCost | undefined, b: CpuCost | undefined): string {
  if (a === undefined || b === undefined) return "unavailable (needs Linux /proc)";
  const signed = (value: number) => `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(1)}`;
  const total = (c: CpuCost) => c.eventLoop + c.kv + c.otherThreads + c.rest;
  return `${signed(b.eventLoop - a.eventLoop)} µs event loop, ${signed(b.kv - a.kv)} µs KV ` +
    `thread, ${signed(b.otherThreads - a.otherThreads)} µs other threads, ` +
    `${signed(b.rest - a.rest)} µs rest of machine; ${signed(total(b) - total(a))} µs in all`;
}

/** Wait after the API-key section's load for a usage write in flight (see services/api_keys.ts). */
const USAGE_FLUSH_SETTLE_MS = 250;

/** Accounts the `/users/me` sections spread their requests over: a bucket each. */
const SPREAD_USERS = 32;
/**
 * bcrypt cost of the `/users/me` sections: only their setup hashes (register,
 * login), so the lowest cost loadConfig accepts keeps the setup short.
 */
const SETUP_BCRYPT_ROUNDS = "10";

/** A bench account and the access token of one login. */
interface BenchUser {
  email: string;
  /** Never printed. */
  token: string;
}

/**
 * Registers `count` accounts and logs each in once, in-process
 * (`app.request`), `cores` at a time to keep the bcrypt pool busy.
 */
async function registerAndLogin(
  app: Hono<AppEnv>,
  count: number,
  cores: number,
): Promise<BenchUser[]> {
  const run = crypto.randomUUID().slice(0, 8);
  const emails = Array.from(
    { length: count },
    (_, i) => `bench-${run}-${String(i).padStart(3, "0")}@example.com`,
  );
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
async function checkMe(
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

/**
 * One discarded run of `settings.warmupSeconds` on each of `urls`, in place of
 * a warmup before every run: the sections that use it measure more targets,
 * and the JIT and the store are warm after the first. Throws on any non-200.
 */
async function warmUp(urls: readonly string[], options: MeasureOptions, tally: StatusTally) {
  if (options.warmupSeconds <= 0) return;
  for (const url of urls) {
    await measure(url, { ...options, seconds: options.warmupSeconds, warmupSeconds: 0 });
    tally.assertAllOk(`warmup of ${url}`);
  }
}

function warmupNote(settings: BenchSettings, what: string): string {
  return settings.warmupSeconds > 0
    ? `One ${settings.warmupSeconds} s warmup per ${what}, then runs of ${settings.seconds} s ` +
      `with none.`
    : `Runs of ${settings.seconds} s, no warmup.`;
}

/** Section 3: `GET /users/me` with the rate limiter on (limits raised) vs off. */
async function rateLimitSection(settings: BenchSettings, options: MeasureOptions): Promise<void> {
  const cores = navigator.hardwareConcurrency;
  const logger = createLogger({ level: "error" });
  const onConfig = benchConfig({ BCRYPT_ROUNDS: SETUP_BCRYPT_ROUNDS });
  const offConfig = benchConfig({
    BCRYPT_ROUNDS: SETUP_BCRYPT_ROUNDS,
    RATE_LIMIT_ENABLED: "false",
  });
  if (!onConfig.rateLimits.enabled || offConfig.rateLimits.enabled) {
    throw new Error("bench: RATE_LIMIT_ENABLED did not switch the limiter");
  }
  const kv = await Deno.openKv(":memory:");
  const hasher = createBcryptHasher({ rounds: onConfig.bcryptRounds });
  const mailer = createLogMailer(logger);
  const clock = createSystemClock();
  // Two apps over one store with one keyring: the same accounts and tokens work on
  // both, and the only difference between them is the limiter.
  const onApp = createApp({ config: onConfig, kv, clock, hasher, mailer, logger });
  const offApp = createApp({ config: offConfig, kv, clock, hasher, mailer, logger });
  const tally = new StatusTally();
  const common = { hostname: "127.0.0.1", port: 0, logger, shutdownTimeoutMs: 2000 };
  const on = startHttpServer({
    ...common,
    handler: tally.wrap((req, info) => onApp.fetch(req, info)),
  });
  const off = startHttpServer({
    ...common,
    handler: tally.wrap((req, info) => offApp.fetch(req, info)),
  });
  try {
    const setupStarted = performance.now();
    const users = await registerAndLogin(onApp, SPREAD_USERS, cores);
    const setupSeconds = (performance.now() - setupStarted) / 1000;
    const onUrl = `http://127.0.0.1:${on.addr.port}/users/me`;
    const offUrl = `http://127.0.0.1:${off.addr.port}/users/me`;
    const bearer = (user: BenchUser) => ({ "Authorization": `Bearer ${user.token}` });
    for (const user of users) {
      // The limiter ran on one server and not on the other: it writes X-RateLimit-*.
      const onHeaders = await checkMe(onUrl, bearer(user), user.email);
      const offHeaders = await checkMe(offUrl, bearer(user), user.email);
      if (!onHeaders.has("x-ratelimit-limit") || offHeaders.has("x-ratelimit-limit")) {
        throw new Error(
          "bench: X-RateLimit-Limit should be on the limiter-on server's responses only",
        );
      }
    }
    tally.assertAllOk("GET /users/me before the load");
    const first = users[0] as BenchUser;
    const spread = users.map((user) => ({ headers: bearer(user) }));
    // As many variants as the spread, all one user's, so wrk does the same work per request.
    const single = users.map(() => ({ headers: bearer(first) }));
    const n = users.length;
    const c = settings.connections;
    // Three targets, not four: with the limiter off nothing depends on which user
    // asks (the same three KV reads either way), so one off baseline serves both
    // on cases, and the section stays near 40 s.
    const targets: Target[] = [
      { name: `limiter off, ${n} users in turn`, url: offUrl, rotate: spread },
      { name: `limiter on, ${n} users in turn`, url: onUrl, rotate: spread },
      { name: `limiter on, 1 user on all ${c} connections`, url: onUrl, rotate: single },
    ];
    // One wrk thread for every target: a rotation needs it, and the ratios need equal loaders.
    const loadOptions: MeasureOptions = {
      ...options,
      threads: 1,
      headers: { "User-Agent": BENCH_USER_AGENT },
    };
    await warmUp([offUrl, onUrl], { ...loadOptions, rotate: spread }, tally);
    const cpu = new CpuMeter();
    const { best, runs } = await measureAlternating(
      targets,
      { ...loadOptions, warmupSeconds: 0 },
      settings.rounds,
      cpu.hooks(tally),
    );

    const rule = onConfig.rateLimits.authenticated;
    console.log(`\n## Rate limiting: GET /users/me with the limiter on vs off\n`);
    console.log(
      `Two apps on one in-memory KV store, identical but for RATE_LIMIT_ENABLED; on, every ` +
        `limit is ${rule}, so nothing is refused and each request still pays for its bucket ` +
        `(a KV read and an atomic commit). Bearer tokens of ${n} accounts (setup ` +
        `${setupSeconds.toFixed(1)} s). ${warmupNote(settings, "server")} Best of ` +
        `${settings.rounds} interleaved run(s) per target, by req/s; every response counted by ` +
        `the server and 200:\n`,
    );
    printTable(best);
    const rps = (i: number) => best[i]?.result.rps ?? Number.NaN;
    const spreadRatio = rps(1) / rps(0);
    const singleRatio = rps(2) / rps(0);
    console.log(
      `\ngoal: limiter on ≥ 75% of limiter off, ${n} users in turn (a bucket per user, ` +
        `the realistic case): ${percent(spreadRatio)} — ${verdict(spreadRatio >= 0.75)}`,
    );
    console.log(
      `limiter on, 1 user on all ${c} connections (one bucket, whose consumes this instance ` +
        `runs one after another, so they queue) vs limiter off: ${percent(singleRatio)} — ` +
        `${verdict(singleRatio >= 0.75)}`,
    );
    console.log(`\nCPU per request of the best runs, µs (Linux /proc; 2 cores are shared):\n`);
    cpu.print(best);
    console.log(
      `\nthe limiter's cost per request, ${n} users: ${cpuDelta(cpu.of(best[0]), cpu.of(best[1]))}`,
    );
    console.log(
      `the limiter's cost per request, 1 user: ${cpuDelta(cpu.of(best[0]), cpu.of(best[2]))}`,
    );
    console.log(`\nAll runs, in order:\n`);
    printTable(runs);
  } finally {
    await on.shutdown();
    await off.shutdown();
    mailer.close();
    hasher.close();
    kv.close();
  }
}

/** Section 4: `GET /users/me` with an API key vs a Bearer token, same app and accounts. */
async function apiKeySection(settings: BenchSettings, options: MeasureOptions): Promise<void> {
  const cores = navigator.hardwareConcurrency;
  const logger = createLogger({ level: "error" });
  const config = benchConfig({ BCRYPT_ROUNDS: SETUP_BCRYPT_ROUNDS });
  const kv = await Deno.openKv(":memory:");
  const hasher = createBcryptHasher({ rounds: config.bcryptRounds });
  const mailer = createLogMailer(logger);
  const app = createApp({ config, kv, clock: createSystemClock(), hasher, mailer, logger });
  const tally = new StatusTally();
  const server = startHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    logger,
    shutdownTimeoutMs: 2000,
    handler: tally.wrap((req, info) => app.fetch(req, info)),
  });
  try {
    const users = await registerAndLogin(app, SPREAD_USERS, cores);
    // One key per account, created with its Bearer token as a client would.
    const keys: string[] = [];
    for (const user of users) {
      const res = await app.request("/api-keys", {
        method: "POST",
        headers: {
          "Authorization": `Bearer ${user.token}`,
          "Content-Type": "application/json",
          "User-Agent": BENCH_USER_AGENT,
        },
        body: JSON.stringify({ name: "bench", scopes: ["profile:read"] }),
      });
      const created = await res.json() as { key?: unknown };
      if (res.status !== 201 || typeof created.key !== "string") {
        // Never print a key; a refusal's problem body contains none.
        throw new Error(`bench: POST /api-keys answered ${res.status}`);
      }
      keys.push(created.key);
    }
    const url = `http://127.0.0.1:${server.addr.port}/users/me`;
    const bearer = users.map((user) => ({ headers: { "Authorization": `Bearer ${user.token}` } }));
    const apiKey = keys.map((key) => ({ headers: { "X-API-Key": key } }));
    for (const [i, user] of users.entries()) {
      await checkMe(url, bearer[i]?.headers ?? {}, user.email);
      await checkMe(url, apiKey[i]?.headers ?? {}, user.email);
    }
    tally.assertAllOk("GET /users/me before the load");
    const n = users.length;
    const targets: Target[] = [
      { name: `Bearer token, ${n} users in turn`, url, rotate: bearer },
      { name: `X-API-Key, the same ${n} users in turn`, url, rotate: apiKey },
    ];
    const loadOptions: MeasureOptions = {
      ...options,
      threads: 1,
      headers: { "User-Agent": BENCH_USER_AGENT },
    };
    await warmUp([url], { ...loadOptions, rotate: [...bearer, ...apiKey] }, tally);
    const cpu = new CpuMeter();
    const { best, runs } = await measureAlternating(
      targets,
      { ...loadOptions, warmupSeconds: 0 },
      settings.rounds,
      cpu.hooks(tally),
    );
    console.log(`\n## API keys: GET /users/me with X-API-Key vs a Bearer token\n`);
    console.log(
      `One app (rate limits on, raised to ${config.rateLimits.authenticated}), ${n} accounts, ` +
        `each with one Bearer token and one API key (scope profile:read). ` +
        `${warmupNote(settings, "server, with both credentials")} Best of ${settings.rounds} ` +
        `interleaved run(s) per target, by req/s; every response counted by the server ` +
        `and 200:\n`,
    );
    printTable(best);
    const ratio = (best[1]?.result.rps ?? Number.NaN) / (best[0]?.result.rps ?? Number.NaN);
    console.log(
      `\ngoal: X-API-Key ≥ 90% of Bearer throughput: ${percent(ratio)} — ${verdict(ratio >= 0.9)}`,
    );
    console.log(`\nCPU per request of the best runs, µs (Linux /proc; 2 cores are shared):\n`);
    cpu.print(best);
    console.log(
      `\nX-API-Key's cost per request beyond Bearer: ${cpuDelta(cpu.of(best[0]), cpu.of(best[1]))}`,
    );
    console.log(`\nAll runs, in order:\n`);
    printTable(runs);
  } finally {
    await server.shutdown();
    // The key service writes buffered usage counts off the request path, every few
    // seconds of traffic; let a write the last requests started finish before the
    // store closes under it (a few ms: one small commit per key).
    await new Promise((resolve) => setTimeout(resolve, USAGE_FLUSH_SETTLE_MS));
    mailer.close();
    hasher.close();
    kv.close();
  }
}

async function main(): Promise<void> {
  const settings = readSettings(Deno.args, Deno.env);
  const loader = await resolveLoader(settings.loader);
  const options: MeasureOptions = {
    loader,
    seconds: settings.seconds,
    warmupSeconds: settings.warmupSeconds,
    connections: settings.connections,
    threads: settings.threads,
  };
  console.log(`# Bulwark HTTP bench`);
  console.log(
    `\nloader: ${loader === "wrk" ? `wrk, ${settings.threads} thread(s)` : "deno (_load.ts)"}; ` +
      `${settings.connections} keep-alive connections; ` +
      `${settings.warmupSeconds} s warmup + ${settings.seconds} s measured per run; ` +
      `deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPU(s), ` +
      `load average ${(Deno.loadavg()[0] ?? 0).toFixed(2)} at start (other work skews every ratio)`,
  );
  if (loader === "deno") {
    console.log(
      "note: the Deno loader may saturate before the server does; ratios are less reliable than wrk's",
    );
  }
  const runs = (name: SectionName) => settings.section === "all" || settings.section === name;
  if (runs("health")) await healthSection(settings, options);
  if (runs("auth")) await authSection(settings, options);
  if (runs("ratelimit")) await rateLimitSection(settings, options);
  if (runs("apikeys")) await apiKeySection(settings, options);
  if (runs("uploads")) await benchUploads();
}

if (import.meta.main) await main();
