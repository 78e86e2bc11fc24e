/**
 * Every incident command as a child process (`deno run main.ts …`) against the
 * KV file of a running server, checking what the server then does.
 */
import { login, signUp, tokenPair } from "../_helpers/accounts.ts";
import { assert, assertEquals, assertMatch } from "../_helpers/assert.ts";
import { bearer, json, jsonInit } from "../_helpers/http.ts";
import { waitFor } from "../_helpers/wait.ts";
import { auditEvents } from "../_helpers/world.ts";
import { auditKey } from "../../services/core/kv_keys.ts";
import { startTestServer } from "./_server.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const ACCESS_RING = `a2:${"n".repeat(40)},a1:test-access-secret-0123456789abcdef0123456789`;
const SIGNING_KEY = "audit-signing-key-0123456789abcdef-0123";

async function startServer() {
  const dir = await Deno.makeTempDir({ prefix: "bulwark_cli_" });
  const env = {
    KV_PATH: `${dir}/bulwark.kv`,
    JWT_ACCESS_SECRETS: ACCESS_RING,
    AUDIT_SIGNING_KEY: SIGNING_KEY,
  };
  const server = await startTestServer(env);
  /** Runs `bulwark <args>` on the server's store, as operator "alice". */
  async function cli(...args: string[]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", MAIN, ...args],
      env: {
        NO_COLOR: "1",
        APP_ENV: "test",
        LOG_LEVEL: "error",
        BCRYPT_ROUNDS: "10",
        JWT_ACCESS_SECRET: "test-access-secret-0123456789abcdef0123456789",
        JWT_REFRESH_SECRET: "test-refresh-secret-0123456789abcdef012345678",
        BULWARK_OPERATOR: "alice",
        ...env,
      },
      clearEnv: true,
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
  }
  const http = {
    request: (path: string, init?: RequestInit) => fetch(`${server.origin}${path}`, init),
  };
  return {
    server,
    cli,
    http,
    async [Symbol.asyncDispose]() {
      await server[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function creds(u: { user: { email: string; password: string } }) {
  return { email: u.user.email, password: u.user.password };
}

/** Polls the server until `path` answers `status` (its block view refreshes every 2 s). */
async function until(
  http: { request(path: string, init?: RequestInit): Promise<Response> },
  what: string,
  path: string,
  init: () => RequestInit,
  status: number,
) {
  await waitFor(what, async () => {
    const res = await http.request(path, init());
    await res.body?.cancel();
    return res.status === status;
  }, { timeoutMs: 8000, intervalMs: 200 });
}

/**
 * A command is another instance: the server sees its revocations through the
 * revocation feed, within the documented bound of one second.
 */
async function refusedWithinOneSecond(
  http: { request(path: string, init?: RequestInit): Promise<Response> },
  headers: Record<string, string>,
) {
  await waitFor("the server to refuse the revoked credential", async () => {
    const res = await http.request("/users/me", { headers });
    await res.body?.cancel();
    return res.status === 401;
  }, { timeoutMs: 1000, intervalMs: 50 });
}

Deno.test("incident commands work on a running server's store", async (t) => {
  await using s = await startServer();
  const { cli, http } = s;
  const alice = await signUp(http);
  const bob = await signUp(http);

  await t.step("sessions revoke --user EMAIL: that user's tokens die at once", async () => {
    const res = await cli("sessions", "revoke", "--user", alice.user.email);
    assertEquals(res.code, 0, res.stderr);
    assertMatch(res.stdout, /revoked 1 session\(s\) of /);
    await refusedWithinOneSecond(http, bearer(alice.access));
    assertEquals((await http.request("/users/me", { headers: bearer(bob.access) })).status, 200);
  });

  await t.step("sessions revoke --all: every session dies", async () => {
    const res = await cli("sessions", "revoke", "--all");
    assertEquals(res.code, 0, res.stderr);
    await refusedWithinOneSecond(http, bearer(bob.access));
    const bad = await cli("sessions", "revoke");
    assertEquals(bad.code, 1);
    assertMatch(bad.stderr, /exactly one of --all or --user/);
  });

  await t.step("users lock / unlock EMAIL", async () => {
    const pair = await tokenPair(await login(http, bob.user));
    const locked = await cli(
      "users",
      "lock",
      bob.user.email,
      "--minutes",
      "30",
      "--reason",
      "drill",
    );
    assertEquals(locked.code, 0, locked.stderr);
    assertMatch(locked.stdout, /locked .* until .*: block /);
    assertEquals((await login(http, bob.user)).status, 423);
    await refusedWithinOneSecond(http, bearer(pair.access));
    const unlocked = await cli("users", "unlock", bob.user.email);
    assertEquals(unlocked.code, 0, unlocked.stderr);
    await until(http, "bob's login", "/auth/login", () => jsonInit("POST", creds(bob)), 200);
    const missing = await cli("users", "lock", "nobody@example.com");
    assertEquals(missing.code, 1);
    assertMatch(missing.stderr, /no user with email "nobody@example.com"/);
  });

  await t.step("keys revoke --user EMAIL and --all", async () => {
    const fresh = await tokenPair(await login(http, alice.user));
    const created = await json(
      await http.request(
        "/api-keys",
        jsonInit("POST", { name: "k", scopes: ["profile:read"] }, bearer(fresh.access)),
      ),
    );
    const key = { "x-api-key": String(created.key) };
    assertEquals((await http.request("/users/me", { headers: key })).status, 200);
    const res = await cli("keys", "revoke", "--user", alice.user.email);
    assertEquals(res.code, 0, res.stderr);
    assertMatch(res.stdout, /revoked 1 API key/);
    await refusedWithinOneSecond(http, key);
    assertEquals((await cli("keys", "revoke", "--all")).code, 0);
  });

  await t.step(
    "jwt rotate prints a new keyring line; drop-kid prints it without the kid",
    async () => {
      const rotated = await cli("jwt", "rotate");
      assertEquals(rotated.code, 0, rotated.stderr);
      assertMatch(
        rotated.stdout,
        /^JWT_ACCESS_SECRETS=k[A-Za-z0-9_-]{8}:[A-Za-z0-9_-]{64},a2:n{40},a1:/m,
      );
      const dropped = await cli("jwt", "drop-kid", "a1");
      assertEquals(dropped.code, 0, dropped.stderr);
      assertMatch(dropped.stdout, new RegExp(`^JWT_ACCESS_SECRETS=a2:n{40}$`, "m"));
      assertMatch(dropped.stdout, /every token signed by a1 is then refused/);
      const signing = await cli("jwt", "drop-kid", "a2");
      assertEquals(signing.code, 1);
      assertMatch(signing.stderr, /a2 signs JWT_ACCESS_SECRETS/);
      assertEquals((await cli("jwt", "drop-kid", "zz")).code, 1);
    },
  );

  await t.step("oauth revoke ends a client's grants, --delete removes it", async () => {
    const unknown = await cli("oauth", "revoke", "--client", "no-such-client");
    assertEquals(unknown.code, 1);
    assertMatch(unknown.stderr, /No such client/);
    const { oauth2 } = s.server.runtime.services;
    const { client } = await oauth2.createClient(
      {
        name: "drill",
        type: "confidential",
        redirectUris: ["https://app.example.com/cb"],
        grantTypes: ["client_credentials"],
        scopes: ["profile:read"],
      },
      "operator",
      { ip: "127.0.0.1", userAgent: "test", requestId: "t" },
    );
    // `--client=ID`: a random id may begin with "-", which parseArgs would take for an option.
    const res = await cli("oauth", "revoke", `--client=${client.id}`, "--delete");
    assertEquals(res.code, 0, res.stderr);
    assertMatch(res.stdout, /revoked 0 grant\(s\) of client .*; client deleted/);
    assertEquals(await oauth2.clients.get(client.id), null);
  });

  await t.step("lockdown on / off reaches the running server within seconds", async () => {
    const on = await cli("lockdown", "on", "--reason", "drill");
    assertEquals(on.code, 0, on.stderr);
    await until(http, "lockdown", "/auth/login", () => jsonInit("POST", creds(alice)), 503);
    const off = await cli("lockdown", "off");
    assertEquals(off.code, 0, off.stderr);
    await until(
      http,
      "the end of lockdown",
      "/auth/login",
      () => jsonInit("POST", creds(alice)),
      200,
    );
    assertEquals((await cli("lockdown", "maybe")).code, 1);
  });

  await t.step("blocks add / list / remove", async () => {
    const add = await cli("blocks", "add", "--ip", "192.0.2.44", "--minutes", "5", "--reason", "t");
    assertEquals(add.code, 0, add.stderr);
    const id = /: ([A-Za-z0-9_-]{22})$/m.exec(add.stdout)![1]!;
    const list = await cli("blocks", "list");
    assertEquals(JSON.parse(list.stdout.trim().split("\n")[0]!).id, id);
    const remove = await cli("blocks", "remove", id);
    assertEquals(remove.code, 0, remove.stderr);
    assertEquals((await cli("blocks", "remove", id)).code, 1);
  });

  await t.step("audit export prints JSON lines filtered by time, type and user", async () => {
    const since = new Date(Date.now() - 3600_000).toISOString();
    const until = new Date(Date.now() + 60_000).toISOString();
    const res = await cli(
      "audit",
      "export",
      "--since",
      since,
      "--until",
      until,
      "--type",
      "auth.login",
    );
    assertEquals(res.code, 0, res.stderr);
    const lines = res.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert(lines.length >= 3);
    assert(lines.every((e) => e.type === "auth.login" && typeof e.hash === "string"));
    const mine = await cli(
      "audit",
      "export",
      "--since",
      since,
      "--until",
      until,
      "--user",
      bob.user.email,
    );
    const events = mine.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert(events.length > 0 && events.every((e) => e.user_id === bob.id));
    assertEquals((await cli("audit", "export", "--since", "yesterday", "--until", until)).code, 1);
  });

  await t.step("forensics --user EMAIL prints one bundle without secrets", async () => {
    const res = await cli("forensics", "--user", bob.user.email);
    assertEquals(res.code, 0, res.stderr);
    const bundle = JSON.parse(res.stdout);
    assertEquals(bundle.account.id, bob.id);
    assert(Array.isArray(bundle.sessions) && bundle.sessions.length >= 1);
    assert(bundle.audit.length > 0);
    assert(!res.stdout.includes("password_hash") && !res.stdout.includes("$2b$"));
    assert(!res.stdout.includes("refresh_jti") && !res.stdout.includes("fingerprint"));
  });

  // `users disable` is the account command (audited as admin.user_updated, actor "cli").
  await t.step("users disable EMAIL ends logins", async () => {
    const res = await cli("users", "disable", alice.user.email);
    assertEquals(res.code, 0, res.stderr);
    assertEquals((await login(http, alice.user)).status, 401);
  });

  await t.step("audit verify passes, then names a record edited in the store", async () => {
    await s.server.runtime.services.audit.checkpoint();
    const ok = await cli("audit", "verify");
    assertEquals(ok.code, 0, ok.stdout + ok.stderr);
    assertMatch(ok.stdout, /^ok: \d+ records in \d+ chain\(s\)/);
    const victim = (await auditEvents(s.server.kv, "auth.login"))[0] as unknown as { id: string };
    const stored = (await s.server.kv.get<Record<string, unknown>>(auditKey(victim.id))).value!;
    await s.server.kv.set(auditKey(victim.id), { ...stored, outcome: "failure" });
    const bad = await cli("audit", "verify");
    assertEquals(bad.code, 1);
    assertMatch(bad.stdout, new RegExp(`edited: chain .*record ${victim.id}`));
  });

  await t.step("every command was audited as the operator's action", async () => {
    const commands = await auditEvents(s.server.kv, "ops.command");
    const names = new Set(commands.map((e) => e.details.command));
    for (
      const name of [
        "sessions revoke",
        "users lock",
        "users unlock",
        "keys revoke",
        "jwt rotate",
        "jwt drop-kid",
        "oauth revoke",
        "lockdown",
        "blocks add",
        "blocks list",
        "blocks remove",
        "audit export",
        "audit verify",
        "forensics",
      ]
    ) assert(names.has(name), name);
    assert(commands.every((e) => e.details.operator === "alice"));
    assert(commands.some((e) => e.outcome === "failure"));
    assert(!JSON.stringify(commands).includes("n".repeat(40)), "no secret in the audit trail");
  });
});
