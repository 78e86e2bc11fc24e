import { assert, assertEquals, assertMatch } from "../_helpers/assert.ts";
import { freePort } from "../_helpers/net.ts";
import {
  fingerprintOf,
  makeCertificate,
  makeSelfSigned,
  servedFingerprint,
} from "../_helpers/tls.ts";
import { waitFor } from "../_helpers/wait.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

function baseEnv(dir: string, extra: Record<string, string>): Record<string, string> {
  return {
    NO_COLOR: "1",
    APP_ENV: "test",
    JWT_ACCESS_SECRET: "a".repeat(40),
    JWT_REFRESH_SECRET: "r".repeat(40),
    KV_PATH: ":memory:",
    PUBLIC_URL: "https://localhost",
    DATA_DIR: dir,
    BCRYPT_ROUNDS: "10",
    TLS_CERT_FILE: `${dir}/tls.crt`,
    TLS_KEY_FILE: `${dir}/tls.key`,
    ...extra,
  };
}

async function bulwark(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

async function writePair(dir: string, pair: { cert: string; key: string }): Promise<void> {
  await Deno.writeTextFile(`${dir}/tls.crt`, pair.cert);
  await Deno.writeTextFile(`${dir}/tls.key`, pair.key);
}

Deno.test("check-config and serve judge the certificate files before serving", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await t.step("check-config prints the certificate and its seconds to expiry", async () => {
      await writePair(dir, await makeCertificate(dir, { days: 30 }));
      const res = await bulwark(["check-config"], baseEnv(dir, {}));
      assertEquals(res.code, 0, res.stderr);
      const printed = JSON.parse(res.stdout).tls_certificate;
      assertEquals(printed.key, "ECDSA P-256");
      assert(
        Math.abs(printed.seconds_to_expiry - 30 * 86_400) < 120,
        String(printed.seconds_to_expiry),
      );
      assert(!res.stdout.includes("PRIVATE KEY"));
    });
    await t.step("an RSA 2048 key is refused by check-config and by serve", async () => {
      await writePair(dir, await makeCertificate(dir, { key: "rsa-2048" }));
      const checked = await bulwark(["check-config"], baseEnv(dir, {}));
      assertEquals(checked.code, 1);
      assertMatch(checked.stderr, /RSA keys need at least 3072 bits/);
      const served = await bulwark(["serve"], baseEnv(dir, { PORT: String(freePort()) }));
      assertEquals(served.code, 1);
      assertMatch(served.stderr, /TLS certificate refused: RSA keys need at least 3072 bits/);
    });
    await t.step("production refuses an expired certificate at start-up", async () => {
      const now = Date.now();
      await writePair(
        dir,
        await makeSelfSigned(new Date(now - 10 * 86_400_000), new Date(now - 86_400_000)),
      );
      const env = baseEnv(dir, { APP_ENV: "production", PORT: String(freePort()) });
      const checked = await bulwark(["check-config"], env);
      assertEquals(checked.code, 1);
      assertMatch(checked.stderr, /the certificate expired at/);
      const served = await bulwark(["serve"], env);
      assertEquals(served.code, 1);
      assertMatch(served.stderr, /TLS certificate refused: the certificate expired at/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve reloads the certificate files on SIGHUP and keeps the old pair when the new one is broken", async () => {
  const dir = await Deno.makeTempDir();
  const first = await makeCertificate(dir, { name: "first" });
  await writePair(dir, first);
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "serve"],
    env: baseEnv(dir, { PORT: String(port), LOG_LEVEL: "info" }),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  // Warnings and errors go to stderr, the rest to stdout.
  const reading = Promise.all(
    [child.stdout, child.stderr].map((stream) =>
      stream.pipeThrough(new TextDecoderStream()).pipeTo(
        new WritableStream({ write: (chunk) => void lines.push(...chunk.split("\n")) }),
      )
    ),
  );
  try {
    await waitFor("the server to listen", () => lines.some((l) => l.includes('"listening"')), {
      timeoutMs: 30_000,
    });
    assertEquals(await servedFingerprint(port), await fingerprintOf(first.cert));
    // A broken pair: the second certificate with the first key. Same folder writes also trigger
    // the file watcher; either path must refuse it.
    const second = await makeCertificate(dir, { name: "second" });
    await Deno.writeTextFile(`${dir}/tls.crt`, second.cert);
    child.kill("SIGHUP");
    await waitFor("the refusal", () => lines.some((l) => l.includes("reload refused")));
    assertEquals(await servedFingerprint(port), await fingerprintOf(first.cert));
    await Deno.writeTextFile(`${dir}/tls.key`, second.key);
    child.kill("SIGHUP");
    await waitFor(
      "the new certificate",
      async () => (await servedFingerprint(port)) === await fingerprintOf(second.cert),
    );
    assert(lines.some((l) => l.includes("tls certificate reloaded") && l.includes('"SIGHUP"')));
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await reading;
    await Deno.remove(dir, { recursive: true });
  }
});
