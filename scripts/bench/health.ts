// deno-lint-ignore-file no-console -- a command-line report
/** Health section of `deno task bench`: `GET /health` through the full stack vs bare Hono. */
import { Hono } from "hono";
import { securityHeaderList } from "../../middleware/security_headers.ts";
import { measureAlternating, type MeasureOptions, type Target } from "./_measure.ts";
import { CpuMeter, percent, printTable, verdict } from "./_report.ts";
import { benchConfig, listen, startBenchServer } from "./_server.ts";
import type { BenchSettings } from "./main.ts";

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
  return new Hono().get("/health", () => {
    // Set one by one on the built Response, the cheapest way Deno offers: a `headers`
    // init (array, record or Headers) goes through WebIDL conversion, several times dearer.
    const res = new Response(HEALTH_BODY);
    const headers = res.headers;
    for (const [name, value] of CONTRACT_HEADERS) headers.set(name, value);
    headers.set("X-Request-ID", `${prefix}-${(++counter).toString(36).padStart(6, "0")}`);
    return res;
  });
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

/**
 * Microseconds per `GET /health` through `app.fetch` in this process, no
 * socket: what the app itself costs, free of the HTTP server and the loader
 * (on a busy machine far steadier than req/s). Best of three batches.
 */
async function inProcessMicros(
  fetch: (req: Request) => Response | Promise<Response>,
): Promise<number> {
  const batch = async (n: number): Promise<number> => {
    const started = performance.now();
    for (let i = 0; i < n; i++) await (await fetch(new Request("http://127.0.0.1/health"))).text();
    return ((performance.now() - started) * 1000) / n;
  };
  await batch(5000);
  return Math.min(await batch(20_000), await batch(20_000), await batch(20_000));
}

/** Section 1: `GET /health` through the full middleware stack vs bare Hono, with and without headers. */
export async function healthSection(
  settings: BenchSettings,
  options: MeasureOptions,
): Promise<void> {
  // The production hasher (worker pool, configured rounds), as main.ts builds it,
  // idle during /health as in production between logins; mail is logged, as
  // main.ts does without SMTP_URL, and no bench path sends any.
  const full = await startBenchServer(benchConfig());
  const logger = full.runtime.deps.logger;
  const bareApp = new Hono().get("/health", (c) => c.json({ status: "ok" }));
  const contractApp = contractHeadersApp();
  // All go through startHttpServer, so the only difference is the app.
  const bare = listen((req) => bareApp.fetch(req), logger);
  const contract = listen((req) => contractApp.fetch(req), logger);
  try {
    const targets: Target[] = [
      { name: "bare Hono GET /health", url: `http://127.0.0.1:${bare.addr.port}/health` },
      {
        name: "bare Hono + contract headers GET /health",
        url: `http://127.0.0.1:${contract.addr.port}/health`,
      },
      { name: "full Bulwark GET /health", url: `${full.origin}/health` },
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
    const cpu = new CpuMeter();
    const { best, runs } = await measureAlternating(
      targets,
      options,
      settings.rounds,
      cpu.sampling(),
    );
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
        `by the server's CPU per request (this process; steadier when the machine is shared): ` +
          `full/bare ${percent(cpu.throughputRatio(fullBest, bareBest))}, ` +
          `full/(bare + contract headers) ${percent(cpu.throughputRatio(fullBest, contractBest))}`,
      );
      console.log(
        `note: Deno's HTTP server cost grows with the number and size of response headers, and ` +
          `the API contract mandates ${count} headers (${bytes} bytes) on every response; ` +
          `full/(bare + contract headers) isolates what Hono routing and Bulwark's middleware add.`,
      );
    }
    const peer = { remoteAddr: { transport: "tcp" as const, hostname: "127.0.0.1", port: 9 } };
    const micros = {
      bare: await inProcessMicros((req) => bareApp.fetch(req)),
      contract: await inProcessMicros((req) => contractApp.fetch(req)),
      full: await inProcessMicros((req) => full.runtime.app.fetch(req, peer)),
    };
    console.log(
      `\nin process (app.fetch, no socket, best of 3 × 20,000): bare Hono ` +
        `${micros.bare.toFixed(1)} µs, bare + contract headers ${micros.contract.toFixed(1)} µs, ` +
        `full Bulwark ${micros.full.toFixed(1)} µs per request → full/bare ` +
        `${percent(micros.bare / micros.full)}, full/(bare + contract headers) ` +
        `${percent(micros.contract / micros.full)}`,
    );
    const drift = headerDrift(responses[2] ?? new Headers(), responses[1] ?? new Headers());
    if (drift.length > 0) {
      console.log(
        `warning: the contract-header target no longer matches the full app's /health ` +
          `headers; update CONTRACT_HEADERS in scripts/bench/health.ts: ${drift.join(", ")}`,
      );
    }
    console.log(`\nAll runs, in order:\n`);
    printTable(runs);
  } finally {
    await full.server.shutdown();
    await bare.shutdown();
    await contract.shutdown();
    await full.runtime.close();
  }
}
