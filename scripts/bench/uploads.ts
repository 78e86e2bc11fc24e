// deno-lint-ignore-file no-console -- a command-line report
/**
 * Uploads section of `deno task bench`:
 *   (a) throughput (MB/s) of 1 MiB PNG uploads without scanning, file store;
 *   (b) peak RSS growth of the server while 8 uploads of 5 MiB stream at once
 *       (goal: < 2× the sum of the bodies in flight, i.e. nothing is buffered twice).
 *
 * The server runs in this process; the client runs in a child process (`deno eval`) so its
 * buffers never count in the server's RSS. Bodies are generated as streams on the client.
 * Run alone with `deno task bench --section=uploads`.
 */
import { createBcryptHasher } from "../../services/identity/password_hasher.ts";
import { BENCH_PASSWORD, benchConfig, startBenchServer } from "./_server.ts";

/** Options of {@linkcode benchUploads}. */
export interface UploadBenchOptions {
  /** 1 MiB uploads in the throughput run. @default 200 */
  throughputUploads?: number;
  /** Concurrent clients in the throughput run. @default 4 */
  throughputConcurrency?: number;
  /** Concurrent 5 MiB uploads in the RSS run. @default 8 */
  rssConcurrency?: number;
}

/** What {@linkcode benchUploads} measured. */
export interface UploadBenchResult {
  throughputMBps: number;
  throughputErrors: number;
  rssBaselineMiB: number;
  rssPeakGrowthMiB: number;
  inFlightMiB: number;
  rssGoalMet: boolean;
}

const MiB = 1024 * 1024;

/** The client: `count` uploads of `size` bytes, `concurrency` at a time, bodies streamed. */
const CLIENT = `
const [url, token, count, size, concurrency] = Deno.args;
const png = Uint8Array.from(atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="), (c) => c.charCodeAt(0));
// A real PNG of \`total\` bytes: signature, IHDR, IDAT, a private chunk of zeros, then IEND.
const iend = png.subarray(png.length - 12);
function body(total) {
  const boundary = "----bench" + crypto.randomUUID();
  const head = new TextEncoder().encode("--" + boundary + '\\r\\nContent-Disposition: form-data; name="file"; filename="b.png"\\r\\nContent-Type: image/png\\r\\n\\r\\n');
  const tail = new TextEncoder().encode("\\r\\n--" + boundary + "--\\r\\n");
  const first = new Uint8Array(png.length - 12 + 8);
  first.set(png.subarray(0, png.length - 12));
  new DataView(first.buffer).setUint32(first.length - 8, total - png.length - 12);
  first.set(new TextEncoder().encode("prVt"), first.length - 4);
  const last = new Uint8Array(16);
  last.set(iend, 4);
  let sent = 0;
  const stream = new ReadableStream({
    pull(c) {
      if (sent === 0) { c.enqueue(head); c.enqueue(first); sent = first.length; return; }
      if (sent >= total) { c.enqueue(tail); c.close(); return; }
      const n = Math.min(65536, total - last.length - sent);
      const bytes = n > 0 ? new Uint8Array(n) : last;
      sent += bytes.length; c.enqueue(bytes);
    },
  });
  return { stream, type: "multipart/form-data; boundary=" + boundary };
}
let next = 0, errors = 0;
const started = performance.now();
await Promise.all(Array.from({ length: Number(concurrency) }, async () => {
  while (next < Number(count)) {
    next++;
    const b = body(Number(size));
    const res = await fetch(url, { method: "POST", body: b.stream, duplex: "half",
      headers: { authorization: "Bearer " + token, "content-type": b.type } });
    await res.body?.cancel();
    if (res.status !== 201) errors++;
  }
}));
console.log(JSON.stringify({ seconds: (performance.now() - started) / 1000, errors }));
`;

async function runClient(
  url: string,
  token: string,
  count: number,
  size: number,
  concurrency: number,
): Promise<{ seconds: number; errors: number }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", CLIENT, url, token, String(count), String(size), String(concurrency)],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("the upload client failed");
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Runs the uploads section and prints a markdown table. */
export async function benchUploads(options: UploadBenchOptions = {}): Promise<UploadBenchResult> {
  const dir = await Deno.makeTempDir({ prefix: "bulwark_bench_uploads_" });
  // bcrypt on the event loop at the lowest cost: only the setup hashes, and no
  // worker isolates count in the server's RSS.
  const hasher = createBcryptHasher({ rounds: 10, workers: 0 });
  try {
    const bench = await startBenchServer(
      benchConfig({
        BCRYPT_ROUNDS: "10",
        RATE_LIMIT_ENABLED: "false",
        DATA_DIR: dir,
        KV_PATH: `${dir}/bench.kv`,
        UPLOAD_DIR: `${dir}/uploads`,
      }),
      { overrides: { hasher } },
    );
    try {
      return await measureUploads(bench.origin, options);
    } finally {
      await bench.close();
    }
  } finally {
    hasher.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function measureUploads(
  base: string,
  options: UploadBenchOptions,
): Promise<UploadBenchResult> {
  const user = { email: "bench@example.com", password: BENCH_PASSWORD };
  await (await fetch(`${base}/auth/register`, jsonPost(user))).body?.cancel();
  const login = await (await fetch(`${base}/auth/login`, jsonPost(user))).json() as {
    access_token: string;
  };
  const url = `${base}/uploads`;
  const token = login.access_token;

  const count = options.throughputUploads ?? 200;
  await runClient(url, token, 8, MiB, 2); // warm-up
  const t = await runClient(url, token, count, MiB, options.throughputConcurrency ?? 4);
  const throughputMBps = count * MiB / 1e6 / t.seconds;

  const concurrency = options.rssConcurrency ?? 8;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const baseline = Deno.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 2);
  const r = await runClient(url, token, concurrency, 5 * MiB, concurrency);
  clearInterval(sampler);
  const inFlightMiB = concurrency * 5;
  const growthMiB = (peak - baseline) / MiB;
  const result: UploadBenchResult = {
    throughputMBps,
    throughputErrors: t.errors + r.errors,
    rssBaselineMiB: baseline / MiB,
    rssPeakGrowthMiB: growthMiB,
    inFlightMiB,
    rssGoalMet: growthMiB < 2 * inFlightMiB,
  };
  console.log("\n### uploads\n");
  console.log("| measure | value | goal |");
  console.log("| --- | --- | --- |");
  console.log(
    `| 1 MiB PNG uploads, no scan (${count}, ${options.throughputConcurrency ?? 4} concurrent) | ${
      throughputMBps.toFixed(1)
    } MB/s | — |`,
  );
  console.log(
    `| peak RSS growth, ${concurrency} × 5 MiB streaming | ${growthMiB.toFixed(1)} MiB ` +
      `(baseline ${result.rssBaselineMiB.toFixed(0)} MiB) | < ${2 * inFlightMiB} MiB ${
        result.rssGoalMet ? "✓" : "✗"
      } |`,
  );
  console.log(`| failed uploads | ${result.throughputErrors} | 0 |`);
  return result;
}

function jsonPost(body: unknown): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  };
}
