// deno-lint-ignore-file no-console -- a command-line report
/**
 * Soak section of `deno task bench`: Bulwark as its own child process (the
 * flags of `deno task start`, development mode, a fresh data folder on disk,
 * native bcrypt at cost 10 so logins stay a small share of the CPU) under a
 * mix of logins, refreshes, logouts, `/users/me` by Bearer token and by API
 * key, API keys created and revoked, uploads and their deletion and a refused
 * upload (`_soak_traffic.ts`) for `--soak-seconds` (600 by default, the
 * issue's 10 minutes). Rate limiting stays on with its per-user, per-key and
 * per-address buckets, its limits raised so the mix is not refused; a 429 is
 * counted apart from other answers so it cannot hide anything.
 *
 * The child's resident memory (/proc/<pid>/status VmRSS, Linux) is sampled
 * every second. The first 10% of the run (at most 60 s) is warm-up: JIT, the
 * password dictionaries, the bcrypt engine and the store's page cache settle.
 * RSS after warm-up is a sawtooth (the heap grows until a major GC, ~±20%
 * here), so single samples say little: growth compares the median RSS of the
 * last fifth of the run after warm-up with that of its first fifth (windows of
 * ≥ 5 s, longer than a GC cycle in a 10-minute run; goal < 10%), and the
 * 10th percentile of each window (near the floor after GC, where a leak shows
 * first, without one deep dip deciding it) and a least-squares slope over
 * every sample after warm-up are printed with it. Goal: zero 5xx.
 *
 * Uploads are not scanned: with no `CLAMAV_ADDRESS` the service stores
 * without scanning, as the uploads section does.
 */
import { cpuSecondsOf, startChildServer } from "./_child_server.ts";
import { percentile } from "./_load.ts";
import { printGrid, printTable, verdict } from "./_report.ts";
import {
  createTraffic,
  emptyTally,
  latencyOf,
  resetTally,
  SOAK_KINDS,
  type TrafficTally,
} from "./_soak_traffic.ts";
import { rssMiB } from "./coldstart.ts";

/** Options of {@linkcode runSoak}. */
export interface SoakOptions {
  /** Seconds of mixed traffic, warm-up included. */
  seconds: number;
  /** Seconds excluded from the growth figure. @default 10% of `seconds`, at most 60 */
  warmupSeconds?: number;
  /** Concurrent request loops. @default 8 */
  workers?: number;
  /** Accounts per loop. @default 4 */
  accountsPerWorker?: number;
  /** How often RSS is sampled, ms. @default 1000 */
  sampleMs?: number;
  /** Called with a one-line summary at every tenth of the run. @default none */
  onProgress?: (line: string) => void;
}

/** One RSS sample: seconds since the traffic started, MiB. */
export interface RssSample {
  at: number;
  rss: number;
}

/** What {@linkcode runSoak} measured. */
export interface SoakResult {
  seconds: number;
  workers: number;
  warmupSeconds: number;
  tally: TrafficTally;
  samples: RssSample[];
  /** Median RSS of the first window after warm-up, MiB. */
  rssWarm: number;
  /** 10th percentile of RSS in that window, MiB. */
  floorWarm: number;
  /** Highest RSS after warm-up, MiB. */
  rssMax: number;
  /** Median RSS of the last window, MiB. */
  rssEnd: number;
  /** 10th percentile of RSS in that window, MiB. */
  floorEnd: number;
  /** Length of each window, seconds. */
  windowSeconds: number;
  /** `rssEnd / rssWarm - 1`. */
  growth: number;
  /** Least-squares slope of RSS after warm-up, MiB per minute. */
  slopeMiBPerMinute: number;
  /** CPU seconds the server used during the traffic. */
  serverCpuSeconds: number;
  /** Log lines at warn or error the server wrote. */
  serverWarnings: number;
  /** The first of them (up to 10). */
  serverWarningLines: string[];
  /** Log lines at error (unhandled errors among them). */
  serverErrors: number;
  /** Totals over every kind. */
  totals: { requests: number; s5xx: number; s429: number; unexpected: number; failed: number };
}

/** Rate limits high enough that the mix, all from 127.0.0.1, is not refused. */
const RAISED_LIMIT = "100000/minute";

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Least-squares slope of `rss` over `at`, per second. */
function slope(samples: readonly RssSample[]): number {
  if (samples.length < 2) return Number.NaN;
  const n = samples.length;
  const mx = samples.reduce((s, p) => s + p.at, 0) / n;
  const my = samples.reduce((s, p) => s + p.rss, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of samples) {
    num += (p.at - mx) * (p.rss - my);
    den += (p.at - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

/** Starts the server child, runs the mix for `options.seconds` and summarises it. */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const seconds = options.seconds;
  const warmupSeconds = options.warmupSeconds ?? Math.min(60, seconds / 10);
  const workers = options.workers ?? 8;
  const sampleMs = options.sampleMs ?? 1000;
  await using server = await startChildServer({
    BCRYPT_ROUNDS: "10",
    // Keys and uploads need a verified address; the soak has no mailbox.
    REQUIRE_EMAIL_VERIFICATION: "false",
    RATE_LIMIT_LOGIN: RAISED_LIMIT,
    RATE_LIMIT_AUTHENTICATED: RAISED_LIMIT,
    RATE_LIMIT_ANONYMOUS: RAISED_LIMIT,
    RATE_LIMIT_UPLOADS: RAISED_LIMIT,
  });
  const tally = emptyTally();
  const traffic = createTraffic(server.origin, tally);
  const accounts = await traffic.setUp(workers * (options.accountsPerWorker ?? 4), 4);
  resetTally(tally);

  const samples: RssSample[] = [];
  const started = performance.now();
  const cpuStart = cpuSecondsOf(server.pid);
  let reported = 0;
  const sample = () => {
    const at = (performance.now() - started) / 1000;
    samples.push({ at, rss: rssMiB(server.pid) });
    if (options.onProgress !== undefined && at >= ((reported + 1) * seconds) / 10) {
      reported++;
      const sent = SOAK_KINDS.reduce((sum, k) => sum + tally.kinds[k].requests, 0);
      const s5xx = SOAK_KINDS.reduce((sum, k) => sum + tally.kinds[k].s5xx, 0);
      options.onProgress(
        `${at.toFixed(0)} s: ${sent} requests, ${s5xx} 5xx, RSS ${
          rssMiB(server.pid).toFixed(0)
        } MiB`,
      );
    }
  };
  sample();
  const sampler = setInterval(sample, sampleMs);
  try {
    await traffic.run(accounts, workers, started + seconds * 1000);
  } finally {
    clearInterval(sampler);
  }
  sample();
  const serverCpuSeconds = cpuSecondsOf(server.pid) - cpuStart;

  const after = samples.filter((s) => s.at >= warmupSeconds);
  const last = samples.at(-1)?.at ?? 0;
  const windowSeconds = Math.max(5, (last - warmupSeconds) / 5);
  const first = after.filter((s) => s.at < warmupSeconds + windowSeconds).map((s) => s.rss);
  const end = after.filter((s) => s.at >= last - windowSeconds).map((s) => s.rss);
  const rssWarm = median(first);
  const rssEnd = median(end);
  const kinds = SOAK_KINDS.map((k) => tally.kinds[k]);
  const sum = (key: "requests" | "s5xx" | "s429" | "unexpected" | "failed") =>
    kinds.reduce((total, t) => total + t[key], 0);
  return {
    seconds,
    workers,
    warmupSeconds,
    tally,
    samples,
    rssWarm,
    floorWarm: percentile([...first].sort((a, b) => a - b), 10),
    floorEnd: percentile([...end].sort((a, b) => a - b), 10),
    windowSeconds,
    rssMax: Math.max(...after.map((s) => s.rss)),
    rssEnd,
    growth: rssEnd / rssWarm - 1,
    slopeMiBPerMinute: slope(after) * 60,
    serverCpuSeconds,
    serverWarnings: server.warnings(),
    serverWarningLines: server.firstWarnings(),
    serverErrors: server.errors(),
    totals: {
      requests: sum("requests"),
      s5xx: sum("s5xx"),
      s429: sum("s429"),
      unexpected: sum("unexpected"),
      failed: sum("failed"),
    },
  };
}

/** Prints what {@linkcode runSoak} measured. */
export function printSoak(r: SoakResult): void {
  const f = (n: number, digits = 0) => Number.isFinite(n) ? n.toFixed(digits) : "–";
  console.log(
    `\n## Soak: mixed traffic against \`deno task start\` (a child process), ${r.seconds} s\n`,
  );
  console.log(
    `${r.workers} request loops over their own accounts; rate limiting on (limits raised); ` +
      `first ${f(r.warmupSeconds)} s are warm-up. Server CPU over the run: ` +
      `${f(r.serverCpuSeconds, 1)} s (${f(r.serverCpuSeconds / r.seconds, 2)} cores).\n`,
  );
  printTable(SOAK_KINDS.map((kind) => {
    const t = r.tally.kinds[kind];
    return {
      target: kind,
      result: {
        rps: t.requests / r.seconds,
        ...latencyOf(t),
        requests: t.requests,
        errors: t.unexpected + t.failed,
      },
    };
  }));
  console.log("");
  printGrid(
    ["kind", "requests", "2xx", "4xx", "429", "5xx", "unexpected", "no response"],
    SOAK_KINDS.map((kind) => {
      const t = r.tally.kinds[kind];
      return [kind, t.requests, t.s2xx, t.s4xx, t.s429, t.s5xx, t.unexpected, t.failed].map(String);
    }),
  );
  if (r.tally.samples.length > 0) {
    console.log(`\nunexpected answers (first ${r.tally.samples.length}):`);
    for (const line of r.tally.samples) console.log(`  ${line}`);
  }
  console.log("");
  printGrid(["server RSS, MiB", "value"], [
    ["at start of traffic", f(r.samples[0]?.rss ?? Number.NaN)],
    [`after warm-up: median of ${f(r.windowSeconds)} s`, f(r.rssWarm, 1)],
    [`after warm-up: p10 of ${f(r.windowSeconds)} s`, f(r.floorWarm, 1)],
    ["max after warm-up", f(r.rssMax, 1)],
    [`end: median of last ${f(r.windowSeconds)} s`, f(r.rssEnd, 1)],
    [`end: p10 of last ${f(r.windowSeconds)} s`, f(r.floorEnd, 1)],
    ["trend after warm-up, MiB/min", f(r.slopeMiBPerMinute, 2)],
  ]);
  const points = Array.from({ length: 11 }, (_, i) => {
    const at = (r.seconds * i) / 10;
    const near = r.samples.reduce((best, s) =>
      Math.abs(s.at - at) < Math.abs(best.at - at) ? s : best
    );
    return `${f(near.at)} s ${f(near.rss)}`;
  });
  console.log(`\nRSS over the run (MiB): ${points.join(", ")}`);
  console.log(
    `${r.totals.requests} requests; server log lines at warn/error: ${r.serverWarnings} ` +
      `(error: ${r.serverErrors})`,
  );
  for (const line of r.serverWarningLines) console.log(`  ${line.slice(0, 400)}`);
  console.log(
    `goal: RSS growth after warm-up < 10%: ${(r.growth * 100).toFixed(1)}% (median to median; ` +
      `p10 to p10 ${((r.floorEnd / r.floorWarm - 1) * 100).toFixed(1)}%) — ` +
      verdict(r.growth < 0.1),
  );
  console.log(`goal: zero 5xx: ${r.totals.s5xx} — ${verdict(r.totals.s5xx === 0)}`);
  console.log(
    `429s: ${r.totals.s429}; other unexpected answers: ${r.totals.unexpected - r.totals.s429}; ` +
      `requests without a response: ${r.totals.failed}`,
  );
}

/** Section: the soak, `seconds` long. */
export async function soakSection(seconds: number): Promise<void> {
  console.log(`\nsoak: ${seconds} s of mixed traffic against a server child…`);
  printSoak(await runSoak({ seconds, onProgress: (line) => console.log(`  ${line}`) }));
}
