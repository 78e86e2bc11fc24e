// deno-lint-ignore-file no-console -- a command-line report
/**
 * Hot-path section of `deno task bench`: store operations per authenticated
 * request (the credential view and the revocation feed), and how fast a
 * revocation on one instance reaches another instance on the same KV file.
 */
import { measure, type MeasureOptions } from "./_measure.ts";
import { verdict } from "./_report.ts";
import {
  BENCH_USER_AGENT,
  benchConfig,
  registerAndLogin,
  SETUP_BCRYPT_ROUNDS,
  SPREAD_USERS,
  startBenchServer,
  StatusTally,
} from "./_server.ts";
import type { BenchSettings } from "./main.ts";
import { SYNC_INTERVAL_MS } from "../../services/limits/local_rate_limiter.ts";

/** Counts the store operations made through `kv`. */
function countingKv(kv: Deno.Kv): { kv: Deno.Kv; reads: () => number; writes: () => number } {
  let reads = 0;
  let writes = 0;
  const proxy = new Proxy(kv, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (name === "get" || name === "getMany" || name === "list") reads++;
        if (name === "set" || name === "delete" || name === "atomic") writes++;
        return value.apply(target, args);
      };
    },
  });
  return { kv: proxy, reads: () => reads, writes: () => writes };
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** KV operations per `GET /users/me` under load, limiter off and on. */
async function storeOpsPerRequest(settings: BenchSettings, options: MeasureOptions) {
  const cores = navigator.hardwareConcurrency;
  console.log(`\n## Hot path: store operations per authenticated request\n`);
  console.log(
    `GET /users/me with Bearer tokens of ${SPREAD_USERS} accounts for ${settings.seconds} s; ` +
      `every read (get, getMany, list) and write (set, delete, atomic) of the store counted. ` +
      `Goal: ≤ 0.05 reads and ≤ 0.05 writes per request.\n`,
  );
  const rows = [];
  for (const limiter of ["false", "true"]) {
    const raw = await Deno.openKv(":memory:");
    const counted = countingKv(raw);
    const tally = new StatusTally();
    const bench = await startBenchServer(
      benchConfig({ BCRYPT_ROUNDS: SETUP_BCRYPT_ROUNDS, RATE_LIMIT_ENABLED: limiter }),
      { wrap: (h) => tally.wrap(h), overrides: { kv: counted.kv } },
    );
    try {
      const users = await registerAndLogin(bench.runtime.app, SPREAD_USERS, cores);
      const url = `${bench.origin}/users/me`;
      const rotate = users.map((u) => ({ headers: { "Authorization": `Bearer ${u.token}` } }));
      await measure(url, { ...options, seconds: 1, warmupSeconds: 0, threads: 1, rotate });
      const reads0 = counted.reads();
      const writes0 = counted.writes();
      const result = await measure(url, {
        ...options,
        warmupSeconds: 0,
        threads: 1,
        rotate,
        headers: { "User-Agent": BENCH_USER_AGENT },
      });
      tally.assertAllOk("GET /users/me");
      const requests = result.requests;
      const reads = (counted.reads() - reads0) / requests;
      const writes = (counted.writes() - writes0) / requests;
      rows.push([
        limiter === "true" ? "rate limiting on" : "rate limiting off",
        result.rps.toFixed(0),
        String(requests),
        reads.toFixed(3),
        writes.toFixed(3),
        verdict(reads <= 0.05 && writes <= 0.05),
      ]);
    } finally {
      await bench.close();
      raw.close();
    }
  }
  console.log("| limiter | req/s | requests | reads/request | writes/request | goal |");
  console.log("|---|---|---|---|---|---|");
  for (const row of rows) console.log(`| ${row.join(" | ")} |`);
  console.log(
    `\nReads come from the feed's poll (one small read per 200 ms), first sight of a token ` +
      `and, with rate limiting on, the local limiter's reconcile (every ${SYNC_INTERVAL_MS} ms: ` +
      `one commit summing what this instance admitted, and one getMany per three buckets used ` +
      `since the last tick); no request writes the store.`,
  );
}

/** Time from a revoking response on instance A to the first refusal on instance B. */
async function revocationPropagation() {
  const trials = 20;
  const dir = await Deno.makeTempDir({ prefix: "bulwark-bench-" });
  const path = `${dir}/bulwark.kv`;
  // Two handles on one file: as two processes share an embedded store (no push between them).
  const kvA = await Deno.openKv(path);
  const kvB = await Deno.openKv(path);
  const config = benchConfig({ BCRYPT_ROUNDS: SETUP_BCRYPT_ROUNDS });
  const a = await startBenchServer(config, { overrides: { kv: kvA } });
  const b = await startBenchServer(config, { overrides: { kv: kvB } });
  const samples: number[] = [];
  try {
    const users = await registerAndLogin(a.runtime.app, trials, navigator.hardwareConcurrency);
    for (const user of users) {
      const auth = { "Authorization": `Bearer ${user.token}` };
      // B checks the token once and holds it in its view.
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`${b.origin}/users/me`, { headers: auth });
        await res.body?.cancel();
        if (res.status !== 200) throw new Error(`bench: B answered ${res.status} before revoking`);
      }
      const out = await fetch(`${a.origin}/auth/logout`, { method: "POST", headers: auth });
      await out.body?.cancel();
      const revokedAt = performance.now();
      for (;;) {
        const res = await fetch(`${b.origin}/users/me`, { headers: auth });
        await res.body?.cancel();
        if (res.status === 401) break;
        if (performance.now() - revokedAt > 5000) throw new Error("bench: B never refused");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      samples.push(performance.now() - revokedAt);
    }
  } finally {
    await b.close();
    await a.close();
    kvB.close();
    kvA.close();
    await Deno.remove(dir, { recursive: true });
  }
  samples.sort((x, y) => x - y);
  const p50 = quantile(samples, 0.5);
  const p99 = quantile(samples, 0.99);
  console.log(`\n## Revocation propagation between two instances on one KV file\n`);
  console.log(
    `${trials} logouts on instance A, each token first held in instance B's credential view; ` +
      `time from A's 204 to B's first 401 (B polls the feed head every 200 ms):\n`,
  );
  console.log(
    `p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, max ${samples.at(-1)?.toFixed(0)} ms`,
  );
  console.log(`goal: p99 < 1 s — ${verdict(p99 < 1000)}`);
}

/** The hot-path section. */
export async function hotPathSection(
  settings: BenchSettings,
  options: MeasureOptions,
): Promise<void> {
  await storeOpsPerRequest(settings, options);
  await revocationPropagation();
}
