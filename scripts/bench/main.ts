// deno-lint-ignore-file no-console -- a command-line report
/**
 * `deno task bench`: HTTP throughput and latency of Bulwark on loopback.
 *
 * The servers run in this process, started by `_server.ts` through the one
 * runtime factory; the load generator (wrk, or the Deno fallback in
 * `_load.ts`) always runs in a child process so it never shares the server's
 * event loop. Each section is a file here and prints markdown tables; add a
 * section by starting what it needs with `startBenchServer`, calling
 * `measure` or `measureAlternating` (`_measure.ts`), passing the rows to
 * `printTable` (`_report.ts`), and listing it below.
 *
 * Sections:
 *   coldstart `deno task start` (its flags from deno.json) as a child process on a
 *           fresh data folder: spawn → first answered `/health`, the first start
 *           of the build (compiles, fills V8's code cache; shown apart) then three
 *           runs (goal < 300 ms), and that process's RSS idle, after a register
 *           (password dictionaries), after a login (bcrypt engine), after a 3 s
 *           burst of mixed traffic, and its peak (goal < 163 MiB, the FastAPI peer).
 *   health  `GET /health`: full stack vs bare Hono vs bare Hono sending the
 *           contract's headers (goal: full ≥ 70% of bare), by HTTP and in
 *           process (`app.fetch`, µs per request: steadier on a busy machine).
 *   auth    (a) logins/s at 2×cores connections over many accounts vs the C-bcrypt
 *           bound, cores ÷ one $2b$ hash by C bcrypt (Python's bcrypt module in a
 *           child process) measured in the same run (goal ≥ 95%);
 *           (b) `/health` p99 while 8 logins are in flight (goal < 25 ms);
 *           (c) `GET /users/me` with a Bearer token vs `/health` (goal ≥ 50%).
 *           Logins are counted by the server; on Linux the CPU each phase got
 *           (event loop, bcrypt threads, everything else) is printed too, since
 *           other work on a 2-core machine takes cores the bound counts on, and
 *           so are logins per CPU-second of the server vs C hashes per
 *           CPU-second, a ratio that other load does not skew.
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
 *   hotpath store reads and writes per `GET /users/me` under load, rate limiting off
 *           and on (goal ≤ 0.05 each), and revocation propagation between two
 *           instances on one KV file: logout on A → first 401 on B, p50/p99 of
 *           20 trials (goal p99 < 1 s).
 *   oauth2  `POST /oauth2/token` client_credentials (tokens/s, p99) and
 *           `POST /oauth2/introspect` vs `GET /users/me` (goal: introspection ≥ 50%).
 *   ops     `GET /users/me` with metrics (request middleware, instrumented KV) and
 *           intrusion rules on vs `METRICS_ENABLED=false INTRUSION_DETECTION=false`,
 *           32 users in turn (goal ≥ 90%).
 *   uploads throughput of 1 MiB PNG uploads, and peak RSS growth while 8 uploads
 *           of 5 MiB stream at once (goal < 2× the bytes in flight); its own
 *           fixed sizes, independent of the settings below.
 *   search  `GET /admin/users?q=<prefix>` over 100,000 accounts (seeded straight
 *           into the store with their index entries) and `GET /notes?q=` over
 *           one user's 1,000 notes: p50/p99 (goal: p99 < 50 ms each).
 *   soak    `deno task start` as a child process under a mix of logins,
 *           refreshes, logouts, `/users/me` by Bearer and by API key, API keys
 *           created and revoked, and uploads, for `--soak-seconds` (default 600):
 *           requests and status classes per kind, p50/p99, the child's RSS after
 *           warm-up, at its peak and at the end (goal: growth < 10% after
 *           warm-up) and zero 5xx. `all` includes it only when its length is
 *           given (`--soak-seconds` or BENCH_SOAK_SECONDS), so a plain
 *           `deno task bench` stays minutes long; `--section=soak` runs it
 *           with the default.
 *
 * Settings (flag, or env var, or default):
 *   --seconds=N        BENCH_SECONDS          5     measured seconds per run
 *   --warmup=N         BENCH_WARMUP_SECONDS   2     discarded seconds before each run
 *   --connections=N    BENCH_CONNECTIONS      16    concurrent keep-alive connections
 *   --threads=N        BENCH_THREADS          1     wrk threads (1 leaves a core to the server)
 *   --rounds=N         BENCH_ROUNDS           2     alternating runs per target
 *   --loader=X         BENCH_LOADER           auto  wrk | deno | auto (wrk, else deno)
 *   --bcrypt-rounds=N  BENCH_BCRYPT_ROUNDS    12    bcrypt cost of the auth section (10-31)
 *   --section=X        BENCH_SECTION          all   all | coldstart | health | auth | ratelimit
 *                                                   | apikeys | hotpath | oauth2 | ops | uploads
 *                                                   | search | soak
 *   --soak-seconds=N   BENCH_SOAK_SECONDS     600   length of the soak, warm-up included
 * The run ends with the bench process's peak RSS (every in-process server).
 */
import { type LoaderKind, type MeasureOptions, resolveLoader } from "./_measure.ts";
import { apiKeySection } from "./apikeys.ts";
import { authSection } from "./auth.ts";
import { coldStartSection, rssMiB } from "./coldstart.ts";
import { healthSection } from "./health.ts";
import { hotPathSection } from "./hotpath.ts";
import { oauth2Section } from "./oauth2.ts";
import { opsSection } from "./ops.ts";
import { rateLimitSection } from "./ratelimit.ts";
import { searchSection } from "./search.ts";
import { soakSection } from "./soak.ts";
import { benchUploads } from "./uploads.ts";

/** Which sections to run. */
export type SectionName =
  | "all"
  | "coldstart"
  | "health"
  | "auth"
  | "ratelimit"
  | "apikeys"
  | "hotpath"
  | "oauth2"
  | "ops"
  | "uploads"
  | "search"
  | "soak";

const SECTIONS: readonly SectionName[] = [
  "all",
  "coldstart",
  "health",
  "auth",
  "ratelimit",
  "apikeys",
  "hotpath",
  "oauth2",
  "ops",
  "uploads",
  "search",
  "soak",
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
  soakSeconds: number;
  /** True when the soak's length was given, which puts the soak in `all`. */
  soakInAll: boolean;
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
  "soak-seconds",
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
    soakSeconds: Math.round(number("soak-seconds", "BENCH_SOAK_SECONDS", 600, 10)),
    soakInAll: (flags.get("soak-seconds") ?? env.get("BENCH_SOAK_SECONDS") ?? "") !== "",
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
  if (runs("coldstart")) await coldStartSection();
  if (runs("health")) await healthSection(settings, options);
  if (runs("auth")) await authSection(settings, options);
  if (runs("ratelimit")) await rateLimitSection(settings, options);
  if (runs("apikeys")) await apiKeySection(settings, options);
  if (runs("hotpath")) await hotPathSection(settings, options);
  if (runs("oauth2")) await oauth2Section(settings, options);
  if (runs("ops")) await opsSection(settings, options);
  if (runs("uploads")) await benchUploads();
  if (runs("search")) await searchSection(settings, options);
  if (settings.section === "soak" || (settings.section === "all" && settings.soakInAll)) {
    await soakSection(settings.soakSeconds);
  }
  console.log(
    `\n## Memory\n\npeak RSS of this bench process (every in-process server above, ` +
      `the loader is a child): ${rssMiB("self", "VmHWM").toFixed(0)} MiB`,
  );
}

if (import.meta.main) await main();
