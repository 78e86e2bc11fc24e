// deno-lint-ignore-file no-console -- a command-line report
/**
 * Search section of `deno task bench`: `GET /admin/users?q=<prefix>` over
 * 100,000 accounts and `GET /notes?q=` over one user's 1,000 notes, p50/p99.
 * Accounts are written straight into the store with the user service's own
 * index entries (bcrypt for 100,000 registrations would take hours); the
 * notes go through the note service, as `POST /notes` would.
 */
import type { Hono } from "hono";
import type { AppEnv } from "../../middleware/app_env.ts";
import { permissionsOf } from "../../services/auth/permissions.ts";
import { userKey } from "../../services/core/kv_keys.ts";
import { userIndexEntries, type UserRecord } from "../../services/identity/users.ts";
import { measureAlternating, type MeasureOptions, type Target, warmUp } from "./_measure.ts";
import { printTable, verdict, warmupNote } from "./_report.ts";
import {
  BENCH_PASSWORD,
  BENCH_USER_AGENT,
  benchConfig,
  registerAndLogin,
  SETUP_BCRYPT_ROUNDS,
  startBenchServer,
  StatusTally,
} from "./_server.ts";
import type { BenchSettings } from "./main.ts";

/** Accounts in the store for the admin search. */
export const SEARCH_USERS = 100_000;
/** Notes of the one searching user (the default `MAX_NOTES_PER_USER`). */
export const SEARCH_NOTES = 1000;
/** The latency goal of both searches. */
const P99_GOAL_MS = 50;

const FIRST_NAMES = ["Ada", "Alan", "Barbara", "Claude", "Dennis", "Edsger", "Frances", "Grace"];
const LAST_NAMES = ["Hopper", "Turing", "Liskov", "Shannon", "Ritchie", "Dijkstra", "Allen"];

/** Writes `count` accounts with their index entries, 100 per commit; the hash is a dummy. */
async function seedUsers(kv: Deno.Kv, count: number): Promise<void> {
  const now = new Date().toISOString();
  for (let start = 0; start < count; start += 100) {
    const op = kv.atomic();
    for (let i = start; i < Math.min(count, start + 100); i++) {
      const user: UserRecord = {
        id: `seed${String(i).padStart(18, "0")}`,
        email: `user${i}@seed${i % 97}.example`,
        display_name: `${FIRST_NAMES[i % FIRST_NAMES.length]} ${
          LAST_NAMES[Math.floor(i / FIRST_NAMES.length) % LAST_NAMES.length]
        } ${i}`,
        role: i % 1000 === 0 ? "moderator" : "user",
        disabled: false,
        password_hash: "$2b$10$seedseedseedseedseedseOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOO",
        password_changed_at: now,
        password_history: [],
        bio: null,
        website: null,
        email_verified_at: now,
        created_at: now,
        updated_at: now,
      };
      op.set(userKey(user.id), user);
      for (const [key, value] of userIndexEntries(user)) op.set(key, value);
    }
    const res = await op.commit();
    if (!res.ok) throw new Error("bench: seeding users failed");
  }
}

async function loginToken(app: Hono<AppEnv>, email: string): Promise<string> {
  const res = await app.request("/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", "User-Agent": BENCH_USER_AGENT },
    body: JSON.stringify({ email, password: BENCH_PASSWORD }),
  });
  const body = await res.json() as { access_token?: unknown };
  if (res.status !== 200 || typeof body.access_token !== "string") {
    throw new Error(`bench: login answered ${res.status}`);
  }
  return body.access_token;
}

/** Checks one request before the load: 200 and a page of the expected size. */
async function checkPage(url: string, token: string, minimum: number): Promise<number> {
  const res = await fetch(url, {
    headers: { "Authorization": `Bearer ${token}`, "User-Agent": BENCH_USER_AGENT },
  });
  const body = await res.json() as { items?: unknown[] };
  const n = body.items?.length ?? -1;
  if (res.status !== 200 || n < minimum) {
    throw new Error(`bench: ${url} answered ${res.status} with ${n} item(s)`);
  }
  return n;
}

/** Section: admin account search over 100,000 users and one user's notes search over 1,000. */
export async function searchSection(
  settings: BenchSettings,
  options: MeasureOptions,
): Promise<void> {
  const tally = new StatusTally();
  const bench = await startBenchServer(benchConfig({ BCRYPT_ROUNDS: SETUP_BCRYPT_ROUNDS }), {
    wrap: (handler) => tally.wrap(handler),
  });
  const { app, deps: { kv }, services } = bench.runtime;
  try {
    const seeded = performance.now();
    await seedUsers(kv, SEARCH_USERS);
    const seedSeconds = (performance.now() - seeded) / 1000;
    const [admin, writer] = await registerAndLogin(app, 2, 2);
    const adminRecord = await services.users.getUserByEmail(admin!.email);
    await services.users.updateUser(adminRecord!.id, (u) => ({ ...u, role: "admin" }));
    const adminToken = await loginToken(app, admin!.email);
    const writerRecord = await services.users.getUserByEmail(writer!.email);
    const actor = {
      userId: writerRecord!.id,
      role: "user" as const,
      scopes: permissionsOf("user"),
    };
    for (let i = 0; i < SEARCH_NOTES; i++) {
      await services.notes.create(actor, {
        title: `Meeting notes ${i}`,
        body: `<p>Discussed <b>item ${i}</b> with the team; follow-up ${
          i % 100 === 0 ? "needle" : "later"
        }.</p>`,
      });
    }
    const origin = bench.origin;
    const adminHeaders = { "Authorization": `Bearer ${adminToken}` };
    const writerHeaders = { "Authorization": `Bearer ${writer!.token}` };
    const targets: Target[] = [
      {
        name: "admin search, email prefix q=user4242 (11 matches)",
        url: `${origin}/admin/users?q=user4242`,
        headers: adminHeaders,
      },
      {
        name: "admin search, name prefix q=grace%20t (≥ 20 matches, first page)",
        url: `${origin}/admin/users?q=grace%20t`,
        headers: adminHeaders,
      },
      {
        name: "notes search, q=needle (10 matches among 1,000: full scan)",
        url: `${origin}/notes?q=needle`,
        headers: writerHeaders,
      },
      {
        name: "notes search, q=zzz (no match: full scan)",
        url: `${origin}/notes?q=zzz`,
        headers: writerHeaders,
      },
    ];
    await checkPage(targets[0]!.url, adminToken, 11);
    await checkPage(targets[1]!.url, adminToken, 20);
    await checkPage(targets[2]!.url, writer!.token, 10);
    tally.assertAllOk("search requests before the load");
    const loadOptions: MeasureOptions = {
      ...options,
      headers: { "User-Agent": BENCH_USER_AGENT },
    };
    for (const target of targets) {
      await warmUp([target.url], {
        ...loadOptions,
        headers: { ...loadOptions.headers, ...target.headers },
      }, tally);
    }
    const { best, runs } = await measureAlternating(
      targets.map((t) => ({ ...t, headers: { ...loadOptions.headers, ...t.headers } })),
      { ...loadOptions, warmupSeconds: 0 },
      settings.rounds,
    );
    tally.assertAllOk("search load");
    console.log(`\n## Search: admin account search and notes search\n`);
    console.log(
      `${SEARCH_USERS.toLocaleString("en-US")} accounts seeded into the store with their index ` +
        `entries in ${seedSeconds.toFixed(1)} s; one user with ${
          SEARCH_NOTES.toLocaleString("en-US")
        } ` +
        `notes. ${options.connections} connections. ${
          warmupNote(settings, "server, per target")
        } ` +
        `Best of ${settings.rounds} interleaved run(s) per target, by req/s:\n`,
    );
    printTable(best);
    const worst = (prefix: string) =>
      Math.max(...best.filter((r) => r.target.startsWith(prefix)).map((r) => r.result.p99));
    const admin99 = worst("admin");
    const notes99 = worst("notes");
    console.log(
      `\ngoal: admin search p99 < ${P99_GOAL_MS} ms: ${admin99.toFixed(1)} ms — ${
        verdict(admin99 < P99_GOAL_MS)
      }`,
    );
    console.log(
      `goal: notes search p99 < ${P99_GOAL_MS} ms: ${notes99.toFixed(1)} ms — ${
        verdict(notes99 < P99_GOAL_MS)
      }`,
    );
    console.log(`\nAll runs, in order:\n`);
    printTable(runs);
  } finally {
    await bench.close();
  }
}
