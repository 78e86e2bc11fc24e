// deno-lint-ignore-file no-console -- a command-line report
/** API-key section of `deno task bench`: `GET /users/me` with `X-API-Key` vs a Bearer token. */
import { measureAlternating, type MeasureOptions, type Target, warmUp } from "./_measure.ts";
import { cpuDelta, CpuMeter, percent, printTable, verdict, warmupNote } from "./_report.ts";
import {
  BENCH_USER_AGENT,
  benchConfig,
  checkMe,
  registerAndLogin,
  SETUP_BCRYPT_ROUNDS,
  SPREAD_USERS,
  startBenchServer,
  StatusTally,
} from "./_server.ts";
import type { BenchSettings } from "./main.ts";

/** Section 4: `GET /users/me` with an API key vs a Bearer token, same app and accounts. */
export async function apiKeySection(
  settings: BenchSettings,
  options: MeasureOptions,
): Promise<void> {
  const cores = navigator.hardwareConcurrency;
  const tally = new StatusTally();
  const bench = await startBenchServer(benchConfig({ BCRYPT_ROUNDS: SETUP_BCRYPT_ROUNDS }), {
    wrap: (handler) => tally.wrap(handler),
  });
  const { app, deps: { config } } = bench.runtime;
  try {
    const users = await registerAndLogin(app, SPREAD_USERS, cores);
    // One key per account, created with its Bearer token as a client would.
    const keys: string[] = [];
    for (const user of users) {
      const res = await app.request("/api-keys", {
        method: "POST",
        headers: {
          "Authorization": `Bearer ${user.token}`,
          "Content-Type": "application/json",
          "User-Agent": BENCH_USER_AGENT,
        },
        body: JSON.stringify({ name: "bench", scopes: ["profile:read"] }),
      });
      const created = await res.json() as { key?: unknown };
      if (res.status !== 201 || typeof created.key !== "string") {
        // Never print a key; a refusal's problem body contains none.
        throw new Error(`bench: POST /api-keys answered ${res.status}`);
      }
      keys.push(created.key);
    }
    const url = `${bench.origin}/users/me`;
    const bearer = users.map((user) => ({ headers: { "Authorization": `Bearer ${user.token}` } }));
    const apiKey = keys.map((key) => ({ headers: { "X-API-Key": key } }));
    for (const [i, user] of users.entries()) {
      await checkMe(url, bearer[i]?.headers ?? {}, user.email);
      await checkMe(url, apiKey[i]?.headers ?? {}, user.email);
    }
    tally.assertAllOk("GET /users/me before the load");
    const n = users.length;
    const targets: Target[] = [
      { name: `Bearer token, ${n} users in turn`, url, rotate: bearer },
      { name: `X-API-Key, the same ${n} users in turn`, url, rotate: apiKey },
    ];
    const loadOptions: MeasureOptions = {
      ...options,
      threads: 1,
      headers: { "User-Agent": BENCH_USER_AGENT },
    };
    await warmUp([url], { ...loadOptions, rotate: [...bearer, ...apiKey] }, tally);
    const cpu = new CpuMeter();
    const { best, runs } = await measureAlternating(
      targets,
      { ...loadOptions, warmupSeconds: 0 },
      settings.rounds,
      cpu.hooks(tally),
    );
    console.log(`\n## API keys: GET /users/me with X-API-Key vs a Bearer token\n`);
    console.log(
      `One app (rate limits on, raised to ${config.rateLimits.authenticated}), ${n} accounts, ` +
        `each with one Bearer token and one API key (scope profile:read). ` +
        `${warmupNote(settings, "server, with both credentials")} Best of ${settings.rounds} ` +
        `interleaved run(s) per target, by req/s; every response counted by the server ` +
        `and 200:\n`,
    );
    printTable(best);
    const ratio = (best[1]?.result.rps ?? Number.NaN) / (best[0]?.result.rps ?? Number.NaN);
    console.log(
      `\ngoal: X-API-Key ≥ 90% of Bearer throughput: ${percent(ratio)} — ${verdict(ratio >= 0.9)}`,
    );
    console.log(`\nCPU per request of the best runs, µs (Linux /proc; 2 cores are shared):\n`);
    cpu.print(best);
    console.log(
      `\nX-API-Key's cost per request beyond Bearer: ${cpuDelta(cpu.of(best[0]), cpu.of(best[1]))}`,
    );
    console.log(`\nAll runs, in order:\n`);
    printTable(runs);
  } finally {
    // The key service buffers usage counts and writes them off the request path;
    // closing the runtime drains them before the store closes under a write.
    await bench.close();
  }
}
