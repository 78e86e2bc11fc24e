// deno-lint-ignore-file no-console -- a command-line report
/**
 * Load generation for `deno task bench`: picks the loader (wrk, or the Deno
 * fallback in `_load.ts`), starts it in a child process so it never shares the
 * server's event loop, and turns its output into a {@linkcode Measurement}.
 */
import type { LoadResult, LoadSpec, RequestVariant } from "./_load.ts";
import type { Measurement, Row } from "./_report.ts";
import type { StatusTally } from "./_server.ts";

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

/** A named URL to load, for {@linkcode measureAlternating}. */
export interface Target {
  name: string;
  url: string;
  /** Request headers of this target, replacing the options' headers. */
  headers?: Record<string, string>;
  /** Per-request variants of this target (e.g. Bearer tokens); see {@linkcode MeasureOptions.rotate}. */
  rotate?: readonly RequestVariant[];
  /** The method of this target, replacing the options' one. */
  method?: string;
  /** The body of this target, replacing the options' one. */
  body?: string;
}

/** Callbacks around each run of {@linkcode measureAlternating}. */
export interface RunHooks {
  before?: (target: Target) => void;
  after?: (target: Target, result: Measurement) => void;
}

/** A load generator running in a child process. */
export interface RunningLoad {
  /** Ends the run early (SIGINT); `done` still resolves with what was measured. */
  stop(): void;
  done: Promise<Measurement>;
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
  console.error("bench: wrk unavailable; falling back to the Deno loader (scripts/bench/_load.ts)");
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
export function startLoad(
  url: string,
  seconds: number,
  options: MeasureOptions,
): Promise<RunningLoad> {
  return options.loader === "wrk"
    ? startWrk(url, seconds, options)
    : startDenoLoader(url, { ...options, warmupSeconds: 0, seconds });
}

/** Throws when any request of `result` failed or none was made. */
export function assertNoFailures(url: string, result: Measurement): void {
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
        ...(target.method === undefined ? {} : { method: target.method }),
        ...(target.body === undefined ? {} : { body: target.body }),
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

/**
 * One discarded run of `options.warmupSeconds` on each of `urls`, in place of
 * a warmup before every run: the sections that use it measure more targets,
 * and the JIT and the store are warm after the first. Throws on any non-200.
 */
export async function warmUp(
  urls: readonly string[],
  options: MeasureOptions,
  tally: StatusTally,
): Promise<void> {
  if (options.warmupSeconds <= 0) return;
  for (const url of urls) {
    await measure(url, { ...options, seconds: options.warmupSeconds, warmupSeconds: 0 });
    tally.assertAllOk(`warmup of ${url}`);
  }
}

/** CPU time so far, in seconds: this process's threads by kind, and the whole machine. */
export interface CpuSample {
  at: number;
  /** The event loop (the main thread). */
  main: number;
  /**
   * bcrypt's threads: Web Workers (`worker-N`, the bcryptjs fallback pool) and
   * tokio's blocking pool (`tokio-runtime-w`, where N-API async work runs native bcrypt).
   */
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
export function cpuSample(): CpuSample | null {
  try {
    let main = 0;
    let workers = 0;
    let kv = 0;
    for (const task of Deno.readDirSync("/proc/self/task")) {
      const times = procTimes(Deno.readTextFileSync(`/proc/self/task/${task.name}/stat`));
      if (task.name === String(Deno.pid)) main += times.seconds;
      else if (times.name.startsWith("worker-") || times.name.startsWith("tokio-runtime")) {
        workers += times.seconds;
      } else if (times.name.startsWith("sw-")) kv += times.seconds;
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
export function cpuLine(start: CpuSample | null, cores: number): string | null {
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
