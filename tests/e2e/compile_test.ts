/**
 * Builds the real binary with `deno task compile`'s script and drives it as an operator would.
 *
 * `deno compile` needs a runtime base (denort) that it downloads; offline it cannot build at
 * all. Whether one is available is decided once, at module load (Deno.test's `ignore` is fixed at
 * registration): `DENORT_BIN`, then denort's download cache, then a probe compile of a one-line
 * file whose negative answer is cached for an hour. Without a base the test is registered as
 * ignored with the reason in its name; it never passes without running the binary.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  hostTarget,
  isMissingRuntimeBaseError,
  ROOT_DIR,
  runtimeBaseStatus,
  stripAnsi,
} from "../../scripts/compile.ts";
import { assert, assertEquals, assertMatch } from "../_helpers/assert.ts";
import { waitFor } from "../_helpers/wait.ts";

/** Whether `deno compile` can produce a binary on this machine, and if not, why. */
export type RuntimeBaseAvailability = { available: true } | { available: false; reason: string };

const PROBE_TIMEOUT_MS = 20_000;
const PROBE_CACHE_TTL_MS = 60 * 60 * 1000;
const STARTUP_TIMEOUT_MS = 30_000;

/** Decides whether a runtime base is available, as cheaply as the evidence allows. */
export async function detectRuntimeBase(): Promise<RuntimeBaseAvailability> {
  const status = await runtimeBaseStatus();
  switch (status.kind) {
    case "denort-bin":
    case "cached":
      return { available: true };
    case "denort-bin-missing":
      return { available: false, reason: `DENORT_BIN="${status.path}" is not a file` };
    case "unknown":
      break;
  }
  const cacheFile = join(
    tmpdir(),
    `bulwark-denort-probe-${Deno.version.deno}-${hostTarget()}.json`,
  );
  const cached = await readProbeCache(cacheFile);
  if (cached !== undefined) return cached;
  const result = await probeCompile();
  // Only a negative answer needs remembering: a successful probe leaves denort in DENO_DIR.
  if (!result.available) {
    await Deno.writeTextFile(cacheFile, JSON.stringify({ at: Date.now(), ...result }))
      .catch(() => {});
  }
  return result;
}

async function readProbeCache(path: string): Promise<RuntimeBaseAvailability | undefined> {
  try {
    const data: unknown = JSON.parse(await Deno.readTextFile(path));
    if (
      typeof data === "object" && data !== null && "at" in data && typeof data.at === "number" &&
      "reason" in data && typeof data.reason === "string" &&
      Date.now() - data.at < PROBE_CACHE_TTL_MS && data.at <= Date.now()
    ) {
      return { available: false, reason: data.reason };
    }
  } catch {
    // No cache (or an unreadable one): probe again.
  }
  return undefined;
}

async function probeCompile(): Promise<RuntimeBaseAvailability> {
  const dir = await Deno.makeTempDir({ prefix: "bulwark-denort-probe-" });
  try {
    await Deno.writeTextFile(join(dir, "probe.ts"), "Deno.exit(0);\n");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["compile", "--no-config", "--no-check", "--output", join(dir, "probe"), "probe.ts"],
      cwd: dir,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    }).output();
    if (out.success) return { available: true };
    const stderr = stripAnsi(new TextDecoder().decode(out.stderr));
    if (isMissingRuntimeBaseError(stderr)) {
      return { available: false, reason: "no deno runtime base available" };
    }
    const firstError = stderr.split("\n").find((line) => line.startsWith("error")) ?? "";
    return { available: false, reason: `probe compile failed: ${firstError.slice(0, 120)}` };
  } catch (error) {
    if (error instanceof DOMException && error.name === "TimeoutError") {
      return { available: false, reason: "no deno runtime base available (probe timed out)" };
    }
    throw error;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** A port that was free a moment ago (PORT=0 would hide the chosen port from the test). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** Collects a child's output stream as text, for assertions and failure messages. */
function collect(stream: ReadableStream<Uint8Array>): { text: () => string; done: Promise<void> } {
  let text = "";
  const done = stream.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({
      write(chunk) {
        text += chunk;
      },
    }),
  );
  return { text: () => text, done };
}

async function runBinary(
  binary: string,
  args: string[],
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(binary, {
    args,
    cwd,
    clearEnv: true,
    env: {},
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** Polls `url` until it answers 200; fails at once, with the logs, if the binary exits first. */
async function waitForHealth(
  url: string,
  exited: Promise<Deno.CommandStatus>,
  logs: () => string,
): Promise<Response> {
  let gone = false;
  exited.then(() => gone = true, () => gone = true);
  try {
    return await waitFor("/health to answer 200", async () => {
      assert(!gone, `the binary exited before serving /health:\n${logs()}`);
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
        if (res.status === 200) return res;
        await res.body?.cancel();
      } catch {
        // Not listening yet.
      }
      return undefined;
    }, { timeoutMs: STARTUP_TIMEOUT_MS, intervalMs: 100 });
  } catch (error) {
    // An early exit already names the logs; a timeout gets them appended.
    if (gone || !(error instanceof Error)) throw error;
    throw new Error(`${error.message}:\n${logs()}`, { cause: error });
  }
}

const availability = await detectRuntimeBase();

Deno.test({
  name: availability.available
    ? "compiled binary serves /health, answers --version/--help/unknown command, stops on SIGTERM"
    : `compiled binary serves /health (skipped: ${availability.reason}; set DENORT_BIN)`,
  ignore: !availability.available,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "bulwark-compile-" });
    const binary = join(dir, Deno.build.os === "windows" ? "bulwark.exe" : "bulwark");
    let child: Deno.ChildProcess | undefined;
    const readers: Promise<void>[] = [];
    try {
      const build = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "scripts/compile.ts", "--output", binary],
        cwd: ROOT_DIR,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const buildLog = stripAnsi(
        new TextDecoder().decode(build.stdout) + new TextDecoder().decode(build.stderr),
      );
      assertEquals(build.code, 0, `compile script failed:\n${buildLog}`);
      assert((await Deno.stat(binary)).isFile, `no binary at ${binary}:\n${buildLog}`);

      const version = await runBinary(binary, ["--version"], dir);
      assertEquals(version.code, 0, version.stderr);
      assertMatch(version.stdout, /^bulwark \d+\.\d+\.\d+/);
      const help = await runBinary(binary, ["--help"], dir);
      assertEquals(help.code, 0, help.stderr);
      assertMatch(help.stdout, /Usage: bulwark/);
      const unknown = await runBinary(binary, ["frobnicate"], dir);
      assertEquals(unknown.code, 2, unknown.stdout + unknown.stderr);
      assertMatch(unknown.stderr, /Unknown command "frobnicate"/);

      const port = freePort();
      child = new Deno.Command(binary, {
        args: ["serve"],
        // The binary may write only ./data (resolved against its working directory), so the
        // KV store lives in <temp dir>/data; relative, so a symlinked temp dir cannot matter.
        cwd: dir,
        clearEnv: true,
        env: {
          APP_ENV: "test",
          HOST: "127.0.0.1",
          PORT: String(port),
          DATA_DIR: "./data",
          KV_PATH: "./data/bulwark.kv",
          JWT_ACCESS_SECRET: "e2e-access-secret-0123456789abcdef0123456789ab",
          JWT_REFRESH_SECRET: "e2e-refresh-secret-0123456789abcdef0123456789a",
          BCRYPT_ROUNDS: "10",
          LOG_LEVEL: "info",
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stdout = collect(child.stdout);
      const stderr = collect(child.stderr);
      readers.push(stdout.done, stderr.done);
      const logs = () => `stdout:\n${stdout.text()}\nstderr:\n${stderr.text()}`;

      const res = await waitForHealth(`http://127.0.0.1:${port}/health`, child.status, logs);
      assertEquals(await res.json(), { status: "ok" });
      assertEquals(res.headers.get("x-content-type-options"), "nosniff");
      assertEquals(res.headers.get("x-frame-options"), "DENY");
      assertMatch(res.headers.get("content-security-policy") ?? "", /default-src 'none'/);
      assertEquals(res.headers.get("referrer-policy"), "strict-origin-when-cross-origin");
      assertEquals(res.headers.get("server"), null);
      assert((await Deno.stat(join(dir, "data", "bulwark.kv"))).isFile, "KV store not in ./data");

      child.kill("SIGTERM");
      const status = await child.status;
      child = undefined;
      await Promise.all([stdout.done, stderr.done]);
      assertEquals(status.signal, null, logs());
      assertEquals(status.code, 0, logs());
      assertMatch(stdout.text() + stderr.text(), /shutdown complete/);
    } finally {
      if (child !== undefined) {
        child.kill("SIGKILL");
        await child.status;
      }
      await Promise.allSettled(readers);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
