// deno-lint-ignore-file no-console -- a command-line report
/**
 * Security-operations section of `deno task bench`: `GET /users/me` with
 * metrics and intrusion detection on vs off.
 */
import { measureAlternating, type MeasureOptions, type Target, warmUp } from "./_measure.ts";
import { cpuDelta, CpuMeter, percent, printTable, verdict, warmupNote } from "./_report.ts";
import {
  BENCH_USER_AGENT,
  benchConfig,
  type BenchUser,
  checkMe,
  registerAndLogin,
  SETUP_BCRYPT_ROUNDS,
  SPREAD_USERS,
  startBenchPair,
  StatusTally,
} from "./_server.ts";
import type { BenchSettings } from "./main.ts";

/** `GET /users/me` with metrics + intrusion rules on vs `METRICS_ENABLED=false INTRUSION_DETECTION=false`. */
export async function opsSection(settings: BenchSettings, options: MeasureOptions): Promise<void> {
  const cores = navigator.hardwareConcurrency;
  const offConfig = benchConfig({
    BCRYPT_ROUNDS: SETUP_BCRYPT_ROUNDS,
    METRICS_ENABLED: "false",
    INTRUSION_DETECTION: "false",
  });
  const onConfig = benchConfig({
    BCRYPT_ROUNDS: SETUP_BCRYPT_ROUNDS,
    METRICS_TOKEN: "bench-metrics-token-0123456789abcdef-0123",
  });
  const tally = new StatusTally();
  const wrap = (handler: Deno.ServeHandler<Deno.NetAddr>) => tally.wrap(handler);
  // The metrics-off server owns the plain store; the metrics-on server wraps that same
  // store in its own KV instrumentation, so only the "on" server pays for it.
  await using pair = await startBenchPair(offConfig, onConfig, { wrap });
  const { owner: off, borrower: on } = pair;
  const users = await registerAndLogin(off.runtime.app, SPREAD_USERS, cores);
  const onUrl = `${on.origin}/users/me`;
  const offUrl = `${off.origin}/users/me`;
  const bearer = (user: BenchUser) => ({ "Authorization": `Bearer ${user.token}` });
  for (const user of users) {
    await checkMe(onUrl, bearer(user), user.email);
    await checkMe(offUrl, bearer(user), user.email);
  }
  tally.assertAllOk("GET /users/me before the load");
  const spread = users.map((user) => ({ headers: bearer(user) }));
  const targets: Target[] = [
    { name: "metrics + intrusion rules off", url: offUrl, rotate: spread },
    { name: "metrics + intrusion rules on", url: onUrl, rotate: spread },
  ];
  const loadOptions: MeasureOptions = {
    ...options,
    threads: 1,
    headers: { "User-Agent": BENCH_USER_AGENT },
  };
  await warmUp([offUrl, onUrl], { ...loadOptions, rotate: spread }, tally);
  const cpu = new CpuMeter();
  const { best, runs } = await measureAlternating(
    targets,
    { ...loadOptions, warmupSeconds: 0 },
    settings.rounds,
    cpu.hooks(tally),
  );
  const scraped = await (await on.runtime.app.request("/metrics", {
    headers: { Authorization: "Bearer bench-metrics-token-0123456789abcdef-0123" },
  })).text();
  if (
    !/bulwark_http_requests_total\{method="GET",route="\/users\/me",status="2xx"\} \d{3,}/.test(
      scraped,
    )
  ) {
    throw new Error("bench: the metrics-on server did not count the load");
  }
  console.log(
    `\n## Security operations: GET /users/me with metrics and intrusion rules on vs off\n`,
  );
  console.log(
    `Two apps on one in-memory KV store; "on" has the request metrics middleware, the ` +
      `instrumented store (every KV call timed) and the intrusion rules subscribed to the ` +
      `audit trail; "off" sets METRICS_ENABLED=false and INTRUSION_DETECTION=false. Both ` +
      `check blocks and lockdown from their in-memory view. Bearer tokens of ${users.length} ` +
      `accounts. ${warmupNote(settings, "server")} Best of ${settings.rounds} interleaved ` +
      `run(s) per target, by req/s; every response counted by the server and 200:\n`,
  );
  printTable(best);
  const ratio = (best[1]?.result.rps ?? Number.NaN) / (best[0]?.result.rps ?? Number.NaN);
  console.log(`\ngoal: on ≥ 90% of off: ${percent(ratio)} — ${verdict(ratio >= 0.9)}`);
  console.log(`\nCPU per request of the best runs, µs (Linux /proc; 2 cores are shared):\n`);
  cpu.print(best);
  console.log(`\nmetrics' cost per request: ${cpuDelta(cpu.of(best[0]), cpu.of(best[1]))}`);
  console.log(`\nAll runs, in order:\n`);
  printTable(runs);
}
