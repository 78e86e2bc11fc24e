/**
 * The account command line as an operator runs it: `bulwark create-admin` and
 * `bulwark users …` as child processes against the KV file of a Bulwark server
 * that is itself running as another process (one SQLite file, two writers).
 */
import { GOOD_PASSWORD, randomUser } from "../_helpers/accounts.ts";
import { assert, assertEquals, assertMatch } from "../_helpers/assert.ts";
import { waitFor } from "../_helpers/wait.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function baseEnv(dir: string): Record<string, string> {
  return {
    NO_COLOR: "1",
    APP_ENV: "test",
    JWT_ACCESS_SECRET: "cli-test-access-secret-0123456789abcdef012345",
    JWT_REFRESH_SECRET: "cli-test-refresh-secret-0123456789abcdef01234",
    KV_PATH: `${dir}/bulwark.kv`,
    DATA_DIR: dir,
    BCRYPT_ROUNDS: "10",
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: "info",
    RATE_LIMIT_LOGIN: "1000/minute",
  };
}

async function bulwark(dir: string, args: string[], stdin?: string): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env: baseEnv(dir),
    clearEnv: true,
    cwd: dir,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  if (stdin !== undefined) await writer.write(new TextEncoder().encode(stdin));
  await writer.close();
  const out = await child.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout).trim(), stderr: decode(out.stderr) };
}

/** `bulwark serve` as a child process; resolves once it listens. */
async function startServer(dir: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "serve"],
    env: baseEnv(dir),
    clearEnv: true,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  // Drained for the whole run: a full pipe would stall the server.
  const drain = (async () => {
    for await (
      const chunk of child.stdout.pipeThrough(new TextDecoderStream())
    ) lines.push(...chunk.split("\n"));
  })();
  const errors = new Response(child.stderr).text();
  const origin = await waitFor("the server to listen", () => {
    const line = lines.find((l) => l.includes('"listening"'));
    return line === undefined ? undefined : String(JSON.parse(line).url);
  }, { timeoutMs: 30_000 });
  return {
    origin,
    async [Symbol.asyncDispose]() {
      child.kill("SIGTERM");
      await child.status;
      await drain;
      await errors;
    },
  };
}

async function api(origin: string, path: string, init: RequestInit = {}): Promise<Response> {
  return await fetch(`${origin}${path}`, init);
}

function postJson(body: unknown, token?: string): RequestInit {
  return {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
  };
}

async function login(origin: string, email: string, password = GOOD_PASSWORD) {
  const res = await api(origin, "/auth/login", postJson({ email, password }));
  const body = await res.json() as Record<string, unknown>;
  return { status: res.status, token: String(body.access_token) };
}

Deno.test("create-admin and users commands work against a running server's KV file", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await using server = await startServer(dir);
    const { origin } = server;
    const bob = randomUser();
    const registered = await api(origin, "/auth/register", postJson(bob));
    assertEquals(registered.status, 201);
    await registered.body?.cancel();
    const bobLogin = await login(origin, bob.email);
    assertEquals(bobLogin.status, 200);
    const adminEmail = `admin-${crypto.randomUUID().slice(0, 8)}@example.com`;

    await t.step("a password breaking the policy is refused with exit 1", async () => {
      const run = await bulwark(dir, ["create-admin", "--email", adminEmail], "password\n");
      assertEquals(run.code, 1, run.stderr);
      assertMatch(run.stderr, /password/i);
      assertEquals(run.stdout, "");
      assertEquals((await login(origin, adminEmail, "password")).status, 401);
    });
    let adminId = "";
    await t.step("create-admin reads stdin, prints the id, and the server sees it", async () => {
      const run = await bulwark(dir, ["create-admin", "--email", adminEmail], `${GOOD_PASSWORD}\n`);
      assertEquals(run.code, 0, run.stderr);
      assertMatch(run.stdout, /^[A-Za-z0-9_-]{22}$/);
      adminId = run.stdout;
      assert(!run.stdout.includes(GOOD_PASSWORD) && !run.stderr.includes(GOOD_PASSWORD));
      // The refused login of the step before started a short progressive delay (429) for
      // this address, which a fast create-admin may not have outlived.
      const admin = await waitFor("the admin's login", async () => {
        const attempt = await login(origin, adminEmail);
        return attempt.status === 429 ? undefined : attempt;
      });
      assertEquals(admin.status, 200);
      const me = await api(origin, `/admin/users/${adminId}`, {
        headers: { authorization: `Bearer ${admin.token}` },
      });
      assertEquals(me.status, 200);
      assertEquals((await me.json()).role, "admin");
    });
    await t.step("users set-role revokes the running server's tokens at once", async () => {
      const run = await bulwark(dir, [
        "users",
        "set-role",
        "--email",
        bob.email,
        "--role",
        "moderator",
      ]);
      assertEquals(run.code, 0, run.stderr);
      const me = await api(origin, "/users/me", {
        headers: { authorization: `Bearer ${bobLogin.token}` },
      });
      assertEquals(me.status, 401);
      await me.body?.cancel();
    });
    await t.step("users disable refuses logins; users enable restores them", async () => {
      assertEquals((await bulwark(dir, ["users", "disable", "--email", bob.email])).code, 0);
      assertEquals((await login(origin, bob.email)).status, 401);
      assertEquals((await bulwark(dir, ["users", "enable", "--email", bob.email])).code, 0);
      // The refused login started a short progressive delay (429) before the next attempt.
      await waitFor("bob's login", async () => (await login(origin, bob.email)).status === 200);
    });
    await t.step("create-admin on an existing account promotes it", async () => {
      const run = await bulwark(dir, ["create-admin", "--email", bob.email], `${GOOD_PASSWORD}\n`);
      assertEquals(run.code, 0, run.stderr);
      const bobId = run.stdout;
      const admin = await login(origin, adminEmail);
      const res = await api(origin, `/admin/users/${bobId}`, {
        headers: { authorization: `Bearer ${admin.token}` },
      });
      assertEquals((await res.json()).role, "admin");
    });
    await t.step("usage errors exit 2; an unknown account exits 1", async () => {
      assertEquals((await bulwark(dir, ["create-admin"], `${GOOD_PASSWORD}\n`)).code, 2);
      assertEquals(
        (await bulwark(dir, ["users", "set-role", "--email", bob.email, "--role", "root"])).code,
        2,
      );
      assertEquals(
        (await bulwark(dir, ["create-admin", "--email", adminEmail, "--password", "x"])).code,
        2,
      );
      const unknown = await bulwark(dir, ["users", "disable", "--email", "nobody@example.com"]);
      assertEquals(unknown.code, 1);
      assertMatch(unknown.stderr, /No account/);
    });
    await t.step("commands running at once with server writes all land", async () => {
      const emails = [0, 1, 2].map(() => randomUser().email);
      const load = Promise.all(
        Array.from({ length: 10 }, () => api(origin, "/auth/register", postJson(randomUser()))),
      );
      const runs = await Promise.all(
        emails.map((email) =>
          bulwark(dir, ["create-admin", "--email", email], `${GOOD_PASSWORD}\n`)
        ),
      );
      for (const res of await load) {
        assertEquals(res.status, 201);
        await res.body?.cancel();
      }
      for (const run of runs) assertEquals(run.code, 0, run.stderr);
      for (const email of emails) assertEquals((await login(origin, email)).status, 200);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
