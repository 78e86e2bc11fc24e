// deno-lint-ignore-file no-console -- a command-line report
/**
 * Reporting for `deno task bench`: the measurement types every table shows,
 * aligned markdown tables, the wording of ratios and goals, and CPU per request.
 */
import { type CpuSample, cpuSample, type RunHooks } from "./_measure.ts";
import type { StatusTally } from "./_server.ts";
import type { BenchSettings } from "./main.ts";

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
export function printGrid(header: readonly string[], body: readonly string[][]): void {
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

/** A ratio as a percentage with one decimal: `0.853` → `"85.3%"`. */
export function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`;
}

/** How a goal line ends: `"met"` or `"NOT met"`. */
export function verdict(met: boolean): string {
  return met ? "met" : "NOT met";
}

/** The sentence saying how the runs of a section were warmed up. */
export function warmupNote(settings: BenchSettings, what: string): string {
  return settings.warmupSeconds > 0
    ? `One ${settings.warmupSeconds} s warmup per ${what}, then runs of ${settings.seconds} s ` +
      `with none.`
    : `Runs of ${settings.seconds} s, no warmup.`;
}

/** CPU time one run spent per request, in µs, by where it went. */
export interface CpuCost {
  eventLoop: number;
  /** Deno KV's SQLite thread. */
  kv: number;
  /** This process's other threads: V8's GC and compiler, the blocking pool (WebCrypto). */
  otherThreads: number;
  /** The rest of the machine: the load generator, and any other work. */
  rest: number;
}

/**
 * Samples CPU (Linux /proc) around each run of `measureAlternating`
 * and keeps each run's {@linkcode CpuCost}: CPU time over the run ÷ the
 * requests it measured. Use with runs that have no warmup of their own, or the
 * warmup's CPU is charged to the measured requests.
 */
export class CpuMeter {
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

  /** Hooks for `measureAlternating` that sample every run and check the tally. */
  hooks(tally: StatusTally): RunHooks {
    return {
      before: () => this.start(),
      after: (target, result) => {
        this.stop(result);
        tally.assertAllOk(target.name);
      },
    };
  }

  /** Hooks for `measureAlternating` that only sample every run. */
  sampling(): RunHooks {
    return { before: () => this.start(), after: (_target, result) => this.stop(result) };
  }

  /**
   * `numerator`'s server CPU per request (this process: event loop, KV thread
   * and its other threads) over `denominator`'s, i.e. the throughput ratio the
   * two would have on the same free cores; NaN when either was not sampled.
   * Steadier than a req/s ratio when other work shares the machine.
   */
  throughputRatio(numerator: Row | undefined, denominator: Row | undefined): number {
    const own = (cost: CpuCost | undefined) =>
      cost === undefined ? Number.NaN : cost.eventLoop + cost.kv + cost.otherThreads;
    return own(this.of(denominator)) / own(this.of(numerator));
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
export function cpuDelta(a: CpuCost | undefined, b: CpuCost | undefined): string {
  if (a === undefined || b === undefined) return "unavailable (needs Linux /proc)";
  const signed = (value: number) => `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(1)}`;
  const total = (c: CpuCost) => c.eventLoop + c.kv + c.otherThreads + c.rest;
  return `${signed(b.eventLoop - a.eventLoop)} µs event loop, ${signed(b.kv - a.kv)} µs KV ` +
    `thread, ${signed(b.otherThreads - a.otherThreads)} µs other threads, ` +
    `${signed(b.rest - a.rest)} µs rest of machine; ${signed(total(b) - total(a))} µs in all`;
}
