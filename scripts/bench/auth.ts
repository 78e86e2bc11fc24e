// deno-lint-ignore-file no-console -- a command-line report
/**
 * Auth section of `deno task bench`: login throughput vs the C-bcrypt bound,
 * `/health` latency under login load, and `GET /users/me` vs `/health`.
 */
import {
  assertNoFailures,
  cpuLine,
  cpuSample,
  measure,
  measureAlternating,
  type MeasureOptions,
  type RunningLoad,
  startLoad,
  type Target,
} from "./_measure.ts";
import { CpuMeter, percent, printTable, verdict } from "./_report.ts";
import {
  BENCH_PASSWORD,
  BENCH_USER_AGENT,
  benchConfig,
  benchEmails,
  startBenchServer,
} from "./_server.ts";
import type { BenchSettings } from "./main.ts";
import process from "node:process";
import { createRuntime } from "../../server/runtime.ts";
import { createBcryptHasher } from "../../services/identity/password_hasher.ts";

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
  /** `handler`, with every `POST /auth/login` counted; GETs go straight through. */
  wrap(handler: Deno.ServeHandler<Deno.NetAddr>): Deno.ServeHandler<Deno.NetAddr> {
    const metered = async (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => {
      this.enter();
      let status = 0;
      try {
        const res = await handler(req, info);
        status = res.status;
        return res;
      } finally {
        this.leave(status);
      }
    };
    return (req, info) =>
      req.method === "POST" && new URL(req.url).pathname === "/auth/login"
        ? metered(req, info)
        : handler(req, info);
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

/**
 * One `$2b$` hash at `rounds` by a C implementation, in ms of wall and of CPU
 * time: Python's `bcrypt` module (OpenBSD's C code) in a child process, the
 * median of `samples` (a typical hash, as the logins it is compared with are
 * typical ones; process start and import are outside the timing). Null when
 * unavailable.
 */
async function cHashMs(
  rounds: number,
  samples: number,
): Promise<{ wall: number; cpu: number } | null> {
  const script = [
    "import bcrypt, sys, time",
    "rounds, n = int(sys.argv[1]), int(sys.argv[2])",
    "walls, cpus = [], []",
    "for _ in range(n):",
    "    salt = bcrypt.gensalt(rounds)",
    "    t, c = time.perf_counter(), time.process_time()",
    "    bcrypt.hashpw(b'Correct-Horse-42-Battery!', salt)",
    "    walls.append(time.perf_counter() - t)",
    "    cpus.append(time.process_time() - c)",
    "print(sorted(walls)[n // 2] * 1000, sorted(cpus)[n // 2] * 1000)",
  ].join("\n");
  for (const python of ["/usr/bin/python3", "python3"]) {
    try {
      const out = await new Deno.Command(python, {
        args: ["-c", script, String(rounds), String(samples)],
        stdout: "piped",
        stderr: "null",
      }).output();
      const [wall, cpu] = new TextDecoder().decode(out.stdout).trim().split(" ").map(Number);
      if (out.success && wall !== undefined && cpu !== undefined && wall > 0 && cpu > 0) {
        return { wall, cpu };
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return null;
}

/**
 * CPU ms a login costs besides bcrypt, in process: a second runtime whose
 * hasher runs at the lowest cost (4), 20 accounts, 100 logins through
 * `app.request`, minus 100 cost-4 verifies timed alone. With the C hash's CPU
 * this projects logins/s on cores that do nothing else.
 */
async function loginOverheadMs(): Promise<number> {
  const cpuMs = () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1000;
  };
  const hasher = createBcryptHasher({ rounds: 4, workers: 1 });
  await using runtime = await createRuntime(benchConfig(), { hasher });
  try {
    const headers = { "Content-Type": "application/json", "User-Agent": BENCH_USER_AGENT };
    const emails = benchEmails(20);
    const body = (email: string) => JSON.stringify({ email, password: BENCH_PASSWORD });
    const post = async (path: string, email: string, status: number) => {
      const res = await runtime.app.request(path, { method: "POST", headers, body: body(email) });
      if (res.status !== status) throw new Error(`bench: ${path} answered ${res.status}`);
      await res.body?.cancel();
    };
    for (const email of emails) await post("/auth/register", email, 201);
    for (const email of emails) await post("/auth/login", email, 200);
    const hash = await hasher.hash(BENCH_PASSWORD);
    let started = cpuMs();
    for (let i = 0; i < 100; i++) await post("/auth/login", emails[i % emails.length]!, 200);
    const logins = cpuMs() - started;
    started = cpuMs();
    for (let i = 0; i < 100; i++) await hasher.verify(BENCH_PASSWORD, hash);
    return Math.max(0, (logins - (cpuMs() - started)) / 100);
  } finally {
    hasher.close();
  }
}

/** Requests per second of the open-loop `/health` probe in section 2 (b). */
const PROBE_RATE = 200;
/** Verifies timed one at a time for one hash's time (half before, half after the login load). */
const VERIFY_SAMPLES = 6;

/** Section 2: login throughput vs the C-bcrypt bound, /health under login load, /users/me. */
export async function authSection(settings: BenchSettings, options: MeasureOptions): Promise<void> {
  const cores = navigator.hardwareConcurrency;
  const meter = new LoginMeter();
  // The production hasher: a worker pool of one thread per core at the configured cost.
  // Mail is logged, as main.ts does without SMTP_URL; no bench path sends any.
  const bench = await startBenchServer(
    benchConfig({ BCRYPT_ROUNDS: String(settings.bcryptRounds) }),
    { wrap: (handler) => meter.wrap(handler) },
  );
  const { app, deps: { config, hasher } } = bench.runtime;
  const origin = bench.origin;
  const loads: RunningLoad[] = [];
  try {
    // One account per login in flight, and then some: the lockout service lets
    // one login per account run at a time (others get 429 login_throttled), so
    // the load rotates through twice as many accounts as requests in flight, and
    // in-flight requests (consecutive in the rotation) never share one.
    const accounts = 2 * Math.max(8, 2 * cores, settings.connections);
    const emails = benchEmails(accounts);
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
    // CPU efficiency, immune to other work on the machine: logins per CPU-second
    // this process spent (every login of the load, abandoned ones included).
    const loginCpuEnd = cpuSample();
    const loadLogins = meter.completions.filter((t) => t >= loadStarted).length;
    const loginCpuSeconds = loginCpu !== null && loginCpuEnd !== null
      ? loginCpuEnd.self - loginCpu.self
      : Number.NaN;
    await timeVerifies(Math.floor(VERIFY_SAMPLES / 2));
    const verifyMs = median(samples);
    // The bound: cores ÷ one hash by C bcrypt, timed now (same machine, same load);
    // the service's own one-at-a-time verify is the fallback when Python has no bcrypt.
    const c = await cHashMs(config.bcryptRounds, 5);
    const cMs = c?.wall ?? null;
    const boundMs = cMs ?? verifyMs;
    const limit = cores / (boundMs / 1000);
    const engine = await hasher.engine;

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
    const meCpu = new CpuMeter();
    const { best, runs } = await measureAlternating(
      targets,
      sameUserAgent,
      settings.rounds,
      meCpu.sampling(),
    );

    console.log(`\n## Auth: logins, /health under login load, GET /users/me\n`);
    console.log(
      `bcrypt cost ${config.bcryptRounds}, engine ${engine}; one verify by the service: ` +
        `${verifyMs.toFixed(1)} ms (median of ${samples.length}, range ` +
        `${Math.min(...samples).toFixed(0)}-${Math.max(...samples).toFixed(0)} ms, one at a ` +
        `time, half before and half after (a)); one $2b$ hash by C bcrypt (Python's bcrypt ` +
        `module, median of 5 in a child process): ${
          cMs === null ? "unavailable, the service's verify used instead" : `${cMs.toFixed(1)} ms`
        } → C-bcrypt bound ${cores} core(s) ÷ ${(boundMs / 1000).toFixed(3)} s = ` +
        `${limit.toFixed(2)} logins/s\n`,
    );
    console.log(`### (a) POST /auth/login at ${2 * cores} connections (2 × cores)\n`);
    printTable([
      {
        target: "C-bcrypt bound (cores ÷ one C hash)",
        result: { rps: limit, p50: boundMs, p99: Number.NaN, requests: 0, errors: 0 },
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
      console.log(`${loginCpuLine}; the bound assumes all ${cores} cores for bcrypt`);
    }
    console.log(
      `goal (a) logins/s ≥ 95% of the C-bcrypt bound: ${percent(loginRatio)} — ` +
        verdict(loginRatio >= 0.95),
    );
    const ownRatio = logins.rate / (cores / (verifyMs / 1000));
    console.log(
      `vs the ${engine} engine's own bound (cores ÷ one verify through the hasher, one at a ` +
        `time): ${percent(ownRatio)}`,
    );
    if (c !== null && Number.isFinite(loginCpuSeconds) && loginCpuSeconds > 0) {
      const perCpu = loadLogins / loginCpuSeconds;
      const cPerCpu = 1000 / c.cpu;
      console.log(
        `per CPU-second (unaffected by other load): ${perCpu.toFixed(2)} logins (${loadLogins} ` +
          `in ${loginCpuSeconds.toFixed(1)} s of this process's CPU, HTTP, KV and all) vs ` +
          `${cPerCpu.toFixed(2)} C hashes (one: ${c.cpu.toFixed(0)} ms of CPU) → ` +
          `${percent(perCpu / cPerCpu)}`,
      );
      const overhead = await loginOverheadMs();
      console.log(
        `a login's CPU besides bcrypt (in process, HTTP parsing aside): ${
          overhead.toFixed(2)
        } ms ` +
          `→ on idle cores logins/s would be ${percent(c.cpu / (c.cpu + overhead))} of the ` +
          `C-bcrypt bound`,
      );
    }

    console.log(`\n### (b) GET /health at ${PROBE_RATE} req/s (open loop) while logins run\n`);
    printTable([
      { target: "GET /health, idle server", result: probeIdle },
      { target: "GET /health, 8 logins in flight", result: probeLoaded },
      { target: "POST /auth/login, 8 connections (the load)", result: backgroundResult },
    ]);
    console.log(
      `\nlogins in flight during the loaded probe: ${inFlight.toFixed(2)} on average ` +
        `(server-side, time-weighted); probe by scripts/bench/_load.ts in a child process, ` +
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
        `\ngoal (c) /users/me ≥ 50% of /health throughput: ${percent(ratio)} — ` +
          verdict(ratio >= 0.5),
      );
      console.log(
        `by the server's CPU per request (steadier when the machine is shared): ` +
          percent(meCpu.throughputRatio(meBest, healthBest)),
      );
    }
    console.log(`\nAll runs, in order:\n`);
    printTable(runs);
  } finally {
    for (const load of loads) load.stop();
    await Promise.allSettled(loads.map((load) => load.done));
    await bench.close();
  }
}
