// deno-lint-ignore-file no-console -- a command-line report
/** Rate-limit section of `deno task bench`: `GET /users/me` with the limiter on vs off. */
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
import { SYNC_INTERVAL_MS } from "../../services/limits/local_rate_limiter.ts";

/** Section 3: `GET /users/me` with the rate limiter on (limits raised) vs off. */
export async function rateLimitSection(
  settings: BenchSettings,
  options: MeasureOptions,
): Promise<void> {
  const cores = navigator.hardwareConcurrency;
  const onConfig = benchConfig({ BCRYPT_ROUNDS: SETUP_BCRYPT_ROUNDS });
  const offConfig = benchConfig({
    BCRYPT_ROUNDS: SETUP_BCRYPT_ROUNDS,
    RATE_LIMIT_ENABLED: "false",
  });
  if (!onConfig.rateLimits.enabled || offConfig.rateLimits.enabled) {
    throw new Error("bench: RATE_LIMIT_ENABLED did not switch the limiter");
  }
  const tally = new StatusTally();
  const wrap = (handler: Deno.ServeHandler<Deno.NetAddr>) => tally.wrap(handler);
  // Two apps over one store with one keyring: the same accounts and tokens work on
  // both, and the only difference between them is the limiter.
  await using pair = await startBenchPair(onConfig, offConfig, { wrap });
  const { owner: on, borrower: off } = pair;
  const setupStarted = performance.now();
  const users = await registerAndLogin(on.runtime.app, SPREAD_USERS, cores);
  const setupSeconds = (performance.now() - setupStarted) / 1000;
  const onUrl = `${on.origin}/users/me`;
  const offUrl = `${off.origin}/users/me`;
  const bearer = (user: BenchUser) => ({ "Authorization": `Bearer ${user.token}` });
  for (const user of users) {
    // The limiter ran on one server and not on the other: it writes X-RateLimit-*.
    const onHeaders = await checkMe(onUrl, bearer(user), user.email);
    const offHeaders = await checkMe(offUrl, bearer(user), user.email);
    if (!onHeaders.has("x-ratelimit-limit") || offHeaders.has("x-ratelimit-limit")) {
      throw new Error(
        "bench: X-RateLimit-Limit should be on the limiter-on server's responses only",
      );
    }
  }
  tally.assertAllOk("GET /users/me before the load");
  const first = users[0] as BenchUser;
  const spread = users.map((user) => ({ headers: bearer(user) }));
  // As many variants as the spread, all one user's, so wrk does the same work per request.
  const single = users.map(() => ({ headers: bearer(first) }));
  const n = users.length;
  const c = settings.connections;
  // Three targets, not four: with the limiter off nothing depends on which user
  // asks (the same three KV reads either way), so one off baseline serves both
  // on cases, and the section stays near 40 s.
  const targets: Target[] = [
    { name: `limiter off, ${n} users in turn`, url: offUrl, rotate: spread },
    { name: `limiter on, ${n} users in turn`, url: onUrl, rotate: spread },
    { name: `limiter on, 1 user on all ${c} connections`, url: onUrl, rotate: single },
  ];
  // One wrk thread for every target: a rotation needs it, and the ratios need equal loaders.
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

  const rule = onConfig.rateLimits.authenticated;
  console.log(`\n## Rate limiting: GET /users/me with the limiter on vs off\n`);
  console.log(
    `Two apps on one in-memory KV store, identical but for RATE_LIMIT_ENABLED; on, every ` +
      `limit is ${rule}, so nothing is refused; each request takes a token from its ` +
      `in-memory bucket (no store operation), reconciled with the store every ` +
      `${SYNC_INTERVAL_MS} ms. Bearer tokens of ${n} accounts (setup ` +
      `${setupSeconds.toFixed(1)} s). ${warmupNote(settings, "server")} Best of ` +
      `${settings.rounds} interleaved run(s) per target, by req/s; every response counted by ` +
      `the server and 200:\n`,
  );
  printTable(best);
  const rps = (i: number) => best[i]?.result.rps ?? Number.NaN;
  const spreadRatio = rps(1) / rps(0);
  const singleRatio = rps(2) / rps(0);
  console.log(
    `\ngoal: limiter on ≥ 75% of limiter off, ${n} users in turn (a bucket per user, ` +
      `the realistic case): ${percent(spreadRatio)} — ${verdict(spreadRatio >= 0.75)}`,
  );
  console.log(
    `limiter on, 1 user on all ${c} connections (one bucket) vs limiter off: ` +
      `${percent(singleRatio)} — ` +
      `${verdict(singleRatio >= 0.75)}`,
  );
  console.log(`\nCPU per request of the best runs, µs (Linux /proc; 2 cores are shared):\n`);
  cpu.print(best);
  console.log(
    `\nthe limiter's cost per request, ${n} users: ${cpuDelta(cpu.of(best[0]), cpu.of(best[1]))}`,
  );
  console.log(
    `the limiter's cost per request, 1 user: ${cpuDelta(cpu.of(best[0]), cpu.of(best[2]))}`,
  );
  console.log(`\nAll runs, in order:\n`);
  printTable(runs);
}
