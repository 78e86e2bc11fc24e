// deno-lint-ignore-file no-console -- a command-line report
/**
 * Fallback HTTP load generator for `scripts/bench.ts`, used when `wrk` is not
 * available. It runs in its own process so it never competes with the server
 * for the server's event loop. Reads one {@linkcode LoadSpec} as JSON on stdin
 * (so headers such as tokens never appear in the process list) and prints one
 * {@linkcode LoadResult} as JSON on stdout.
 *
 * Each of `connections` workers is a keep-alive `fetch` loop with one request
 * in flight at a time (closed loop, like wrk). Latency is measured per request
 * from send to the last body byte.
 */

/** What to send, how hard and for how long. */
export interface LoadSpec {
  url: string;
  /** @default "GET" */
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Concurrent keep-alive request loops. */
  connections: number;
  /** Seconds of load whose results are discarded (JIT, connection setup). */
  warmupSeconds: number;
  /** Seconds of measured load. */
  seconds: number;
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

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

async function worker(spec: LoadSpec, deadline: number, tally: PhaseTally): Promise<void> {
  const init: RequestInit = {
    method: spec.method ?? "GET",
    headers: spec.headers ?? {},
    ...(spec.body === undefined ? {} : { body: spec.body }),
  };
  while (performance.now() < deadline) {
    const started = performance.now();
    try {
      const res = await fetch(spec.url, init);
      // Reading the body to the end returns the connection to the keep-alive pool.
      await res.arrayBuffer();
      tally.latencies.push(performance.now() - started);
      if (res.status >= 400) tally.statusErrors++;
    } catch {
      tally.socketErrors++;
      // Without a server every fetch fails at once; do not spin a core on it.
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

async function phase(spec: LoadSpec, seconds: number): Promise<PhaseTally & { elapsed: number }> {
  const tally: PhaseTally = { latencies: [], statusErrors: 0, socketErrors: 0 };
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(Array.from({ length: spec.connections }, () => worker(spec, deadline, tally)));
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
  const spec = JSON.parse(await new Response(Deno.stdin.readable).text()) as LoadSpec;
  console.log(JSON.stringify(await runLoad(spec)));
}
