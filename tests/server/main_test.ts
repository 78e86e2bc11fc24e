import { parseCommand } from "../../server/cli.ts";
import { COMMANDS } from "../../server/commands/mod.ts";
import { assert, assertEquals, assertMatch } from "../_helpers/assert.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function bulwark(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    clearEnv: true,
    cwd: await Deno.makeTempDir(),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("parseCommand() understands the documented command line", async (t) => {
  await t.step("serve is the default", () => {
    for (const args of [[], ["serve"]]) {
      const parsed = parseCommand(args, COMMANDS);
      assertEquals(parsed.kind === "run" ? parsed.command.name : parsed.kind, "serve");
    }
  });
  await t.step("help, version, check-config", () => {
    assertEquals(parseCommand(["--help"], COMMANDS).kind, "help");
    assertEquals(parseCommand(["-V"], COMMANDS).kind, "version");
    const parsed = parseCommand(["check-config"], COMMANDS);
    assertEquals(parsed.kind === "run" ? parsed.command.name : parsed.kind, "check-config");
  });
  await t.step("unknown commands, flags and extra arguments are usage errors", () => {
    for (const args of [["nope"], ["--port=1"], ["serve", "extra"]]) {
      assertEquals(parseCommand(args, COMMANDS).kind, "usage-error");
    }
  });
});

Deno.test("bulwark exits with the documented codes", async (t) => {
  await t.step("--version and --help exit 0", async () => {
    const version = await bulwark(["--version"]);
    assertEquals(version.code, 0);
    assertMatch(version.stdout, /^bulwark \d+\.\d+\.\d+/);
    assertEquals((await bulwark(["--help"])).code, 0);
  });
  await t.step("an unknown command exits 2 with a message", async () => {
    const res = await bulwark(["frobnicate"]);
    assertEquals(res.code, 2);
    assertMatch(res.stderr, /Unknown command "frobnicate"/);
  });
  await t.step("check-config in production names every problem and exits 1", async () => {
    const res = await bulwark(["check-config"], { APP_ENV: "production", CORS_ORIGINS: "*" });
    assertEquals(res.code, 1);
    assertMatch(res.stderr, /JWT_ACCESS_SECRET/);
    assertMatch(res.stderr, /JWT_REFRESH_SECRET/);
    assertMatch(res.stderr, /CORS_ORIGINS/);
  });
  await t.step("check-config prints the settings and no secret", async () => {
    const secret = "s".repeat(40);
    const res = await bulwark(["check-config"], {
      APP_ENV: "production",
      JWT_ACCESS_SECRET: secret,
      JWT_REFRESH_SECRET: "t".repeat(40),
      CORS_ORIGINS: "https://app.example.com",
    });
    assertEquals(res.code, 0);
    const settings = JSON.parse(res.stdout) as Record<string, unknown>;
    assertEquals(settings.APP_ENV, "production");
    assert(!res.stdout.includes(secret) && !res.stdout.includes("t".repeat(40)));
  });
});
