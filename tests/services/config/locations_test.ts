/**
 * Storage locations (security review #10): Deno's `:memory:` store and bare file names work,
 * and a location the process may not write is one clear line from `check-config` and at
 * start-up, never a stack trace.
 */
import { assert, assertEquals, assertMatch } from "../../_helpers/assert.ts";

const MAIN = new URL("../../../main.ts", import.meta.url).pathname;

/** Runs the CLI with the permissions of `deno task start` from a fresh folder. */
async function cli(args: string[], env: Record<string, string>) {
  const cwd = await Deno.makeTempDir();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-write=./data",
      "--allow-sys=hostname,networkInterfaces",
      MAIN,
      ...args,
    ],
    env: { NO_COLOR: "1", APP_ENV: "test", ...env },
    clearEnv: true,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(cwd, { recursive: true });
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

const SECRETS = {
  JWT_ACCESS_SECRET: "a".repeat(40),
  JWT_REFRESH_SECRET: "b".repeat(40),
};

Deno.test("check-config accepts KV_PATH=:memory:", async () => {
  const res = await cli(["check-config"], { ...SECRETS, KV_PATH: ":memory:" });
  assertEquals(res.code, 0, res.stderr);
  assertEquals(JSON.parse(res.stdout).KV_PATH, ":memory:");
});

Deno.test("an unwritable KV_PATH is one clear line naming the setting and the permission", async (t) => {
  for (const path of ["bulwark.kv", "/root/elsewhere/bulwark.kv"]) {
    await t.step(path, async () => {
      const res = await cli(["check-config"], { ...SECRETS, KV_PATH: path });
      assertEquals(res.code, 1);
      assertMatch(res.stderr, /"KV_PATH" location .* cannot be written: .*--allow-write/);
      assert(!res.stderr.includes("NotCapable") && !res.stderr.includes("    at "), res.stderr);
    });
  }
  await t.step("serve refuses it the same way", async () => {
    const res = await cli(["serve"], { ...SECRETS, KV_PATH: "bulwark.kv", PORT: "0" });
    assertEquals(res.code, 1);
    assertMatch(res.stderr, /"KV_PATH" location bulwark.kv cannot be written/);
  });
  await t.step("UPLOAD_DIR too", async () => {
    const res = await cli(["check-config"], { ...SECRETS, UPLOAD_DIR: "/root/up" });
    assertEquals(res.code, 1);
    assertMatch(res.stderr, /"UPLOAD_DIR" location \/root\/up cannot be written/);
  });
});

Deno.test("development mode refuses a non-loopback HOST unless APP_ENV is set (forgotten APP_ENV)", async (t) => {
  await t.step("APP_ENV unset and HOST=0.0.0.0: refused", async () => {
    const env = { HOST: "0.0.0.0", KV_PATH: ":memory:" };
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", MAIN, "check-config"],
      env: { NO_COLOR: "1", ...env },
      clearEnv: true,
      cwd: await Deno.makeTempDir(),
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 1);
    assertMatch(
      new TextDecoder().decode(out.stderr),
      /"HOST" 0\.0\.0\.0 .* set APP_ENV explicitly/,
    );
  });
  await t.step("APP_ENV=development set explicitly: accepted", async () => {
    const res = await cli(["check-config"], {
      APP_ENV: "development",
      HOST: "0.0.0.0",
      KV_PATH: ":memory:",
    });
    assertEquals(res.code, 0, res.stderr);
  });
});
