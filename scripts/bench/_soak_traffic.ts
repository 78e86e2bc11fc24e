/**
 * The mixed traffic of the soak (`soak.ts`): a pool of accounts registered up
 * front, each with sessions and API keys, then workers that each own a slice
 * of the pool (so no two requests ever race on one refresh token) and pick
 * their next request by weight: `/users/me` with a Bearer token or an API key,
 * refreshes (the newest refresh token kept), logins that open a session and
 * logouts that end the oldest, uploads and their deletion, a refused upload,
 * and API keys created and revoked, so session, token and key state churns
 * the way it would leak. Every response is tallied by kind and status class.
 */
import { percentile } from "./_load.ts";

/** The kinds of request of the mix. */
export const SOAK_KINDS = [
  "me_bearer",
  "me_api_key",
  "refresh",
  "login",
  "logout",
  "upload",
  "upload_delete",
  "upload_refused",
  "api_key_create",
  "api_key_revoke",
] as const;

/** One kind of request. */
export type SoakKind = (typeof SOAK_KINDS)[number];

/** The status each kind should get; anything else is counted as unexpected. */
const EXPECTED: Record<SoakKind, number> = {
  me_bearer: 200,
  me_api_key: 200,
  refresh: 200,
  login: 200,
  logout: 204,
  upload: 201,
  upload_delete: 204,
  // A text file: not on the extension allowlist, so the refusal path is soaked too.
  upload_refused: 415,
  api_key_create: 201,
  api_key_revoke: 204,
};

/** Responses of one kind. */
export interface KindTally {
  requests: number;
  s2xx: number;
  /** 4xx other than 429. */
  s4xx: number;
  s429: number;
  s5xx: number;
  /** Responses whose status differs from the kind's expected one (any class). */
  unexpected: number;
  /** Requests that got no response (connection errors). */
  failed: number;
  latencies: number[];
}

/** Every kind's tally, and a few unexpected answers to show. */
export interface TrafficTally {
  kinds: Record<SoakKind, KindTally>;
  /** Up to 10 `kind status body` lines of unexpected answers. */
  samples: string[];
}

/** p50 and p99 of a kind's latencies, in ms. */
export function latencyOf(tally: KindTally): { p50: number; p99: number } {
  const sorted = [...tally.latencies].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

interface Session {
  access: string;
  refresh: string;
}

/** How often each action is picked, out of the sum. */
const WEIGHTS: ReadonlyArray<[Action, number]> = [
  ["me_bearer", 40],
  ["me_api_key", 30],
  ["refresh", 12],
  ["upload", 6],
  // bcrypt-bound: a small share, or logins would be the whole load.
  ["login", 3],
  ["api_key", 2],
  ["upload_refused", 1],
];
type Action =
  | "me_bearer"
  | "me_api_key"
  | "refresh"
  | "upload"
  | "login"
  | "api_key"
  | "upload_refused";
const TOTAL_WEIGHT = WEIGHTS.reduce((sum, [, w]) => sum + w, 0);

/** Sessions and keys an account holds at most; the oldest one ends when a new one would exceed. */
const MAX_SESSIONS = 3;
const MAX_KEYS = 3;
const MAX_UPLOADS = 2;

/** The password of every soak account (passes the policy). */
const PASSWORD = "Soak-Traffic-42-Lantern!";
const USER_AGENT = "bulwark-soak/1";
/** A real 1×1 PNG. */
const PNG = Uint8Array.from(
  atob(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==",
  ),
  (c) => c.charCodeAt(0),
);

function emptyKind(): KindTally {
  return {
    requests: 0,
    s2xx: 0,
    s4xx: 0,
    s429: 0,
    s5xx: 0,
    unexpected: 0,
    failed: 0,
    latencies: [],
  };
}

/** A fresh, empty tally. */
export function emptyTally(): TrafficTally {
  const kinds = Object.fromEntries(SOAK_KINDS.map((kind) => [kind, emptyKind()]));
  return { kinds: kinds as Record<SoakKind, KindTally>, samples: [] };
}

/** Empties `tally` in place (after the set-up, so the figures are the run's). */
export function resetTally(tally: TrafficTally): void {
  for (const kind of SOAK_KINDS) tally.kinds[kind] = emptyKind();
  tally.samples.length = 0;
}

/** An account of the pool, with what it currently holds. */
export interface Account {
  email: string;
  sessions: Session[];
  keys: Array<{ id: string; key: string }>;
  uploads: string[];
}

/** The soak's traffic against one server. */
export interface Traffic {
  /** Registers `count` accounts, each with one session and two API keys; throws on any refusal. */
  setUp(count: number, concurrency: number): Promise<Account[]>;
  /** Runs `workers` loops, each over its own slice of `accounts`, until `until` (`performance.now()`). */
  run(accounts: Account[], workers: number, until: number): Promise<void>;
}

/** Sends one request of `kind`, tallies it, and returns the response (null when none came). */
async function send(
  tally: TrafficTally,
  kind: SoakKind,
  url: string,
  init: RequestInit,
): Promise<{ status: number; body: string } | null> {
  const t = tally.kinds[kind];
  t.requests++;
  const started = performance.now();
  let res: Response;
  let body: string;
  try {
    res = await fetch(url, init);
    body = await res.text();
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    t.failed++;
    if (tally.samples.length < 10) tally.samples.push(`${kind} no response: ${error.message}`);
    // Without a server every fetch fails at once; do not spin a core on it.
    await new Promise((resolve) => setTimeout(resolve, 100));
    return null;
  }
  t.latencies.push(performance.now() - started);
  if (res.status >= 500) t.s5xx++;
  else if (res.status === 429) t.s429++;
  else if (res.status >= 400) t.s4xx++;
  else t.s2xx++;
  if (res.status !== EXPECTED[kind]) {
    t.unexpected++;
    if (tally.samples.length < 10) {
      tally.samples.push(`${kind} ${res.status} ${body.slice(0, 200)}`);
    }
  }
  return { status: res.status, body };
}

function json(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    headers: { "Content-Type": "application/json", "User-Agent": USER_AGENT, ...headers },
    body: JSON.stringify(body),
  };
}

function bearer(session: Session): Record<string, string> {
  return { Authorization: `Bearer ${session.access}`, "User-Agent": USER_AGENT };
}

/** The soak's traffic against `origin`: set-up first, then the weighted mix until `until`. */
export function createTraffic(origin: string, tally: TrafficTally): Traffic {
  async function login(account: Account): Promise<void> {
    const res = await send(
      tally,
      "login",
      `${origin}/auth/login`,
      json({ email: account.email, password: PASSWORD }),
    );
    if (res?.status !== 200) return;
    const pair = JSON.parse(res.body) as { access_token: string; refresh_token: string };
    account.sessions.push({ access: pair.access_token, refresh: pair.refresh_token });
    // The oldest session ends: sessions come and go, as the revocation state would leak them.
    while (account.sessions.length > MAX_SESSIONS) {
      const oldest = account.sessions.shift()!;
      await send(tally, "logout", `${origin}/auth/logout`, {
        method: "POST",
        headers: bearer(oldest),
      });
    }
  }

  async function createKey(account: Account): Promise<void> {
    const session = account.sessions.at(-1);
    if (session === undefined) return;
    const res = await send(
      tally,
      "api_key_create",
      `${origin}/api-keys`,
      json({ name: "soak", scopes: ["profile:read"], expires_in_days: 1 }, bearer(session)),
    );
    if (res?.status !== 201) return;
    const created = JSON.parse(res.body) as { id: string; key: string };
    account.keys.push({ id: created.id, key: created.key });
    while (account.keys.length > MAX_KEYS) {
      const oldest = account.keys.shift()!;
      await send(tally, "api_key_revoke", `${origin}/api-keys/${oldest.id}`, {
        method: "DELETE",
        headers: bearer(session),
      });
    }
  }

  function uploadInit(
    session: Session,
    name: string,
    bytes: Uint8Array<ArrayBuffer>,
    type: string,
  ) {
    const form = new FormData();
    form.append("file", new Blob([bytes], { type }), name);
    return { method: "POST", headers: bearer(session), body: form };
  }

  async function act(account: Account, action: Action): Promise<void> {
    // A session lost to an unexpected refusal is replaced by a login.
    const session = account.sessions.at(-1);
    if (session === undefined || action === "login") return await login(account);
    switch (action) {
      case "me_bearer": {
        const res = await send(tally, "me_bearer", `${origin}/users/me`, {
          headers: bearer(session),
        });
        if (res?.status === 401) account.sessions.pop();
        return;
      }
      case "me_api_key": {
        const key = account.keys[Math.floor(Math.random() * account.keys.length)];
        if (key === undefined) return await createKey(account);
        const res = await send(tally, "me_api_key", `${origin}/users/me`, {
          headers: { "X-API-Key": key.key, "User-Agent": USER_AGENT },
        });
        if (res?.status === 401) account.keys.splice(account.keys.indexOf(key), 1);
        return;
      }
      case "refresh": {
        // Any of the account's sessions, so each one's refresh token rotates now and then.
        const index = Math.floor(Math.random() * account.sessions.length);
        const which = account.sessions[index]!;
        const res = await send(
          tally,
          "refresh",
          `${origin}/auth/refresh`,
          json({ refresh_token: which.refresh }),
        );
        if (res?.status === 200) {
          const pair = JSON.parse(res.body) as { access_token: string; refresh_token: string };
          which.access = pair.access_token;
          which.refresh = pair.refresh_token;
        } else if (res?.status === 401) account.sessions.splice(index, 1);
        return;
      }
      case "upload": {
        const res = await send(
          tally,
          "upload",
          `${origin}/uploads`,
          uploadInit(session, "soak.png", PNG, "image/png"),
        );
        if (res?.status === 201) account.uploads.push((JSON.parse(res.body) as { id: string }).id);
        while (account.uploads.length > MAX_UPLOADS) {
          const oldest = account.uploads.shift()!;
          await send(tally, "upload_delete", `${origin}/uploads/${oldest}`, {
            method: "DELETE",
            headers: bearer(session),
          });
        }
        return;
      }
      case "upload_refused": {
        const text = new TextEncoder().encode(`soak ${crypto.randomUUID()}\n`);
        await send(
          tally,
          "upload_refused",
          `${origin}/uploads`,
          uploadInit(session, "soak.txt", text, "text/plain"),
        );
        return;
      }
      case "api_key":
        return await createKey(account);
    }
  }

  function pick(): Action {
    let r = Math.random() * TOTAL_WEIGHT;
    for (const [action, weight] of WEIGHTS) {
      r -= weight;
      if (r < 0) return action;
    }
    return "me_bearer";
  }

  return {
    async setUp(count: number, concurrency: number): Promise<Account[]> {
      const run = crypto.randomUUID().slice(0, 8);
      const accounts: Account[] = Array.from({ length: count }, (_, i) => ({
        email: `soak-${run}-${i}@example.com`,
        sessions: [],
        keys: [],
        uploads: [],
      }));
      let next = 0;
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (next < accounts.length) {
          const account = accounts[next++]!;
          const res = await fetch(
            `${origin}/auth/register`,
            json({ email: account.email, password: PASSWORD, display_name: "Soak" }),
          );
          const body = await res.text();
          if (res.status !== 201) {
            throw new Error(`soak: register answered ${res.status}: ${body.slice(0, 300)}`);
          }
          await login(account);
          await createKey(account);
          await createKey(account);
          if (account.sessions.length !== 1 || account.keys.length !== 2) {
            throw new Error(`soak: set-up refused: ${tally.samples.join("; ")}`);
          }
        }
      }));
      return accounts;
    },

    async run(accounts: Account[], workers: number, until: number): Promise<void> {
      await Promise.all(Array.from({ length: workers }, async (_, w) => {
        const mine = accounts.filter((_, i) => i % workers === w);
        while (performance.now() < until) {
          const account = mine[Math.floor(Math.random() * mine.length)];
          if (account === undefined) return;
          await act(account, pick());
        }
      }));
    },
  };
}
