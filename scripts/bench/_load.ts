// deno-lint-ignore-file no-console -- a command-line report
/**
 * Fallback HTTP load generator for `scripts/bench/main.ts`, used when `wrk` is not
 * available, and the open-loop latency probe (which wrk cannot do). It runs in
 * its own process so it never competes with the server for the server's event
 * loop. Reads one {@linkcode LoadSpec} as JSON on stdin (so headers such as
 * tokens never appear in the process list) and prints one
 * {@linkcode LoadResult} as JSON on stdout. SIGINT ends the run early: no new
 * requests are sent, the ones in flight are awaited, and the result is printed.
 *
 * Closed loop (default): each of `connections` workers is a keep-alive `fetch`
 * loop with one request in flight at a time, like wrk.
 *
 * Open loop (`rate` set): requests are sent on a fixed schedule whether or not
 * earlier ones have answered. A closed loop stops sending while the server
 * stalls, so a stall shows up as one slow request among thousands of fast
 * ones and hides below p99 ("coordinated omission"); on a fixed schedule every
 * request due during the stall waits, and p99 shows it.
 *
 * Latency is measured per request from send to the last body byte.
 */

/** What to send, how hard and for how long. */
export interface LoadSpec {
  url: string;
  /** @default "GET" */
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /**
   * Variants sent in turn, one per request, merged over `headers` and `body`:
   * e.g. the logins or tokens of many accounts.
   */
  rotate?: RequestVariant[];
  /** Concurrent keep-alive request loops (closed loop; ignored when `rate` is set). */
  connections: number;
  /** Requests per second on a fixed schedule (open loop). @default closed loop */
  rate?: number;
  /** Seconds of load whose results are discarded (JIT, connection setup). */
  warmupSeconds: number;
  /** Seconds of measured load. */
  seconds: number;
}

/** What changes from one request to the next in a rotation. */
export interface RequestVariant {
  headers?: Record<string, string>;
  body?: string;
}

/** Outcome of the measured phase; latencies in milliseconds. */
export interface LoadResult {
  /** Responses received (any status). */
  requests: number;
  /** Responses with status >= 400. */
  statusErrors: number;
  /** Requests that failed without a response (connect/read errors). */
  socketErrors: number;
  /** Wall-clock length of the measured phase. */
  elapsedSeconds: number;
  rps: number;
  p50: number;
  p99: number;
}

interface PhaseTally {
  latencies: number[];
  statusErrors: number;
  socketErrors: number;
}

/** Set by SIGINT: stop sending, finish what is in flight, report. */
let stopRequested = false;

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

/** Request inits in turn: one per variant of `rotate`, else always the same. */
function requestInits(spec: LoadSpec): () => RequestInit {
  const variants = spec.rotate !== undefined && spec.rotate.length > 0 ? spec.rotate : [{}];
  const inits: RequestInit[] = variants.map((variant) => {
    const body = variant.body ?? spec.body;
    return {
      method: spec.method ?? "GET",
      headers: { ...spec.headers, ...variant.headers },
      ...(body === undefined ? {} : { body }),
    };
  });
  let next = 0;
  return () => inits[next++ % inits.length] ?? {};
}

/** Sends one request and tallies it; false when no response came back. */
async function send(url: string, init: RequestInit, tally: PhaseTally): Promise<boolean> {
  const started = performance.now();
  try {
    const res = await fetch(url, init);
    // Reading the body to the end returns the connection to the keep-alive pool.
    await res.arrayBuffer();
    tally.latencies.push(performance.now() - started);
    if (res.status >= 400) tally.statusErrors++;
    return true;
  } catch {
    tally.socketErrors++;
    return false;
  }
}

async function worker(
  spec: LoadSpec,
  nextInit: () => RequestInit,
  deadline: number,
  tally: PhaseTally,
): Promise<void> {
  while (performance.now() < deadline && !stopRequested) {
    if (!await send(spec.url, nextInit(), tally)) {
      // Without a server every fetch fails at once; do not spin a core on it.
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** Sends `rate` requests per second on a fixed schedule until `deadline`. */
async function openLoop(spec: LoadSpec, rate: number, deadline: number, tally: PhaseTally) {
  const nextInit = requestInits(spec);
  const started = performance.now();
  const pending = new Set<Promise<boolean>>();
  for (let i = 0; !stopRequested; i++) {
    const due = started + (i * 1000) / rate;
    if (due >= deadline) break;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    // Latency counts from the actual send, so the loader's own timer jitter is
    // not charged to the server; the schedule alone prevents coordinated omission.
    const request: Promise<boolean> = send(spec.url, nextInit(), tally).finally(() =>
      pending.delete(request)
    );
    pending.add(request);
  }
  await Promise.all(pending);
}

async function phase(spec: LoadSpec, seconds: number): Promise<PhaseTally & { elapsed: number }> {
  const tally: PhaseTally = { latencies: [], statusErrors: 0, socketErrors: 0 };
  const started = performance.now();
  const deadline = started + seconds * 1000;
  if (spec.rate !== undefined && spec.rate > 0) {
    await openLoop(spec, spec.rate, deadline, tally);
  } else {
    // One rotation shared by all workers, so requests in flight take consecutive variants.
    const nextInit = requestInits(spec);
    await Promise.all(
      Array.from({ length: spec.connections }, () => worker(spec, nextInit, deadline, tally)),
    );
  }
  return { ...tally, elapsed: (performance.now() - started) / 1000 };
}

/** Runs the warmup phase, then the measured phase, and summarises the latter. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  if (spec.warmupSeconds > 0) await phase(spec, spec.warmupSeconds);
  const measured = await phase(spec, spec.seconds);
  const sorted = measured.latencies.sort((a, b) => a - b);
  return {
    requests: sorted.length,
    statusErrors: measured.statusErrors,
    socketErrors: measured.socketErrors,
    elapsedSeconds: measured.elapsed,
    rps: sorted.length / measured.elapsed,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
  };
}

if (import.meta.main) {
  const onInterrupt = () => {
    stopRequested = true;
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  const spec = JSON.parse(await new Response(Deno.stdin.readable).text()) as LoadSpec;
  const result = await runLoad(spec);
  Deno.removeSignalListener("SIGINT", onInterrupt);
  console.log(JSON.stringify(result));
}
