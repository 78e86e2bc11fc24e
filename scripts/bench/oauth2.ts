// deno-lint-ignore-file no-console -- a command-line report
/**
 * OAuth2 section of `deno task bench`: `POST /oauth2/token` (client_credentials), token
 * introspection and `GET /users/me` with a Bearer token, on one app.
 */
import { measureAlternating, type MeasureOptions, type Target, warmUp } from "./_measure.ts";
import { percent, printTable, verdict, warmupNote } from "./_report.ts";
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

const FORM = "application/x-www-form-urlencoded";

/** Section 6: client_credentials tokens/s, introspection req/s, both vs `GET /users/me`. */
export async function oauth2Section(
  settings: BenchSettings,
  options: MeasureOptions,
): Promise<void> {
  const cores = navigator.hardwareConcurrency;
  const tally = new StatusTally();
  const bench = await startBenchServer(benchConfig({ BCRYPT_ROUNDS: SETUP_BCRYPT_ROUNDS }), {
    wrap: (handler) => tally.wrap(handler),
  });
  const { app, services } = bench.runtime;
  try {
    const users = await registerAndLogin(app, SPREAD_USERS, cores);
    const meta = { ip: "127.0.0.1", userAgent: BENCH_USER_AGENT, requestId: "bench" };
    const { client, secret } = await services.oauth2.createClient(
      {
        name: "bench",
        type: "confidential",
        redirectUris: [],
        grantTypes: ["client_credentials"],
        scopes: ["profile:read"],
      },
      "bench",
      meta,
    );
    const basic = `Basic ${btoa(`${client.id}:${secret}`)}`;
    const clientHeaders = { "Authorization": basic, "Content-Type": FORM };
    const tokenUrl = `${bench.origin}/oauth2/token`;
    const introspectUrl = `${bench.origin}/oauth2/introspect`;
    const meUrl = `${bench.origin}/users/me`;
    // A handful of tokens to introspect in turn (each is one KV lookup set).
    const tokens: string[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await fetch(tokenUrl, {
        method: "POST",
        headers: { ...clientHeaders, "User-Agent": BENCH_USER_AGENT },
        body: "grant_type=client_credentials",
      });
      const body = await res.json() as { access_token?: unknown };
      if (res.status !== 200 || typeof body.access_token !== "string") {
        throw new Error(`bench: POST /oauth2/token answered ${res.status}`);
      }
      tokens.push(body.access_token);
    }
    const check = await fetch(introspectUrl, {
      method: "POST",
      headers: { ...clientHeaders, "User-Agent": BENCH_USER_AGENT },
      body: `token=${tokens[0]}`,
    });
    if ((await check.json() as { active?: unknown }).active !== true) {
      throw new Error("bench: introspection of a fresh token is not active");
    }
    for (const user of users.slice(0, 4)) {
      await checkMe(meUrl, { "Authorization": `Bearer ${user.token}` }, user.email);
    }
    tally.assertAllOk("setup");
    const n = users.length;
    const targets: Target[] = [
      {
        name: `GET /users/me, Bearer, ${n} users in turn`,
        url: meUrl,
        method: "GET",
        rotate: users.map((u) => ({ headers: { "Authorization": `Bearer ${u.token}` } })),
      },
      {
        name: "POST /oauth2/introspect, 8 tokens in turn",
        url: introspectUrl,
        method: "POST",
        headers: clientHeaders,
        rotate: tokens.map((t) => ({ body: `token=${t}` })),
      },
      {
        name: "POST /oauth2/token, client_credentials",
        url: tokenUrl,
        method: "POST",
        headers: clientHeaders,
        body: "grant_type=client_credentials",
      },
    ];
    const loadOptions: MeasureOptions = {
      ...options,
      threads: 1,
      headers: { "User-Agent": BENCH_USER_AGENT },
    };
    for (const target of targets) {
      await warmUp([target.url], {
        ...loadOptions,
        ...(target.method === undefined ? {} : { method: target.method }),
        ...(target.body === undefined ? {} : { body: target.body }),
        ...(target.rotate === undefined ? {} : { rotate: target.rotate }),
        headers: { ...loadOptions.headers, ...target.headers },
      }, tally);
    }
    const withAgent = targets.map((t) => ({
      ...t,
      headers: { "User-Agent": BENCH_USER_AGENT, ...t.headers },
    }));
    const { best, runs } = await measureAlternating(
      withAgent,
      { ...loadOptions, warmupSeconds: 0 },
      settings.rounds,
      { after: () => tally.assertAllOk("an OAuth2 run") },
    );
    console.log(`\n## OAuth2: token endpoint and introspection vs GET /users/me\n`);
    console.log(
      `One app (rate limits on, raised), one confidential client (client_secret_basic). ` +
        `${warmupNote(settings, "target")} Best of ${settings.rounds} interleaved run(s) per ` +
        `target, by req/s; every response counted by the server and 200:\n`,
    );
    printTable(best);
    const me = best[0]?.result.rps ?? Number.NaN;
    const introspect = (best[1]?.result.rps ?? Number.NaN) / me;
    const token = (best[2]?.result.rps ?? Number.NaN) / me;
    console.log(
      `\ngoal: introspection ≥ 50% of GET /users/me throughput: ${percent(introspect)} — ` +
        verdict(introspect >= 0.5),
    );
    console.log(`client_credentials tokens/s vs GET /users/me: ${percent(token)}`);
    console.log(`\nAll runs, in order:\n`);
    printTable(runs);
  } finally {
    await bench.close();
  }
}
