import { createHash } from "node:crypto";
import { EICAR } from "./files.ts";
import { freePort } from "./net.ts";
import { waitFor } from "./wait.ts";

/** Debian's `clamav-daemon` binary. */
const CLAMD = "/usr/sbin/clamd";

/** clamd loads a one-line database in a second or two; this allows for a slow CI machine. */
const START_TIMEOUT_MS = 30_000;

/** A real clamd on loopback with an EICAR-only database; `await using` stops it. */
export interface Clamd extends AsyncDisposable {
  /** `127.0.0.1:<port>`, the form `CLAMAV_ADDRESS` takes. */
  readonly address: string;
  /** Kills clamd (idempotent) and removes its directory. */
  stop(): Promise<void>;
}

/** Why clamd cannot run here, or `null` when it can. */
export async function clamdUnavailableReason(): Promise<string | null> {
  try {
    await Deno.stat(CLAMD);
    return null;
  } catch (error) {
    // A missing binary is the answer, not a failure.
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    return `${CLAMD} is not installed (Debian package clamav-daemon; .ci/run installs it)`;
  }
}

/**
 * Starts clamd in the foreground on a free loopback port with a temporary configuration and a
 * temporary database holding only the EICAR test signature (an `.hdb` MD5 line), so no
 * signature download is needed. clamd unpacks zips itself, so EICAR inside a zip is found too.
 */
export async function startClamd(): Promise<Clamd> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "bulwark_clamd_" });
  const md5 = createHash("md5").update(EICAR).digest("hex");
  await Deno.mkdir(`${dir}/db`);
  // .hdb matches the whole file (plain EICAR, or an entry clamd unpacked from a zip); .ndb
  // matches the string anywhere, e.g. inside an otherwise valid PDF.
  await Deno.writeTextFile(`${dir}/db/eicar.hdb`, `${md5}:${EICAR.length}:Eicar-Test-Signature\n`);
  const hex = Array.from(new TextEncoder().encode(EICAR), (b) => b.toString(16).padStart(2, "0"));
  await Deno.writeTextFile(
    `${dir}/db/eicar.ndb`,
    `Eicar-Test-Signature-Body:0:*:${hex.join("")}\n`,
  );
  await Deno.writeTextFile(
    `${dir}/clamd.conf`,
    [
      "Foreground yes",
      `TCPSocket ${port}`,
      "TCPAddr 127.0.0.1",
      `DatabaseDirectory ${dir}/db`,
      `PidFile ${dir}/clamd.pid`,
      "SelfCheck 0",
      "",
    ].join("\n"),
  );
  const child = new Deno.Command(CLAMD, {
    args: ["-c", `${dir}/clamd.conf`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Drained continuously so clamd never blocks on a full pipe; shown if the start fails.
  const output = Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  let stopped = false;

  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGKILL");
    } catch (error) {
      // The process may already have exited (a failed start); its status is awaited below.
      if (!(error instanceof TypeError)) throw error;
    }
    await child.status;
    await output;
    await Deno.remove(dir, { recursive: true });
  }

  try {
    await waitForClamd(port, child.status);
  } catch (error) {
    await stop();
    throw new Error(`Cannot start clamd on port ${port}: ${(await output).join("\n")}`, {
      cause: error,
    });
  }
  return { address: `127.0.0.1:${port}`, stop, [Symbol.asyncDispose]: stop };
}

/** Waits until clamd answers `zPING` with `PONG`: the port opens only after the database loads. */
async function waitForClamd(port: number, exited: Promise<Deno.CommandStatus>): Promise<void> {
  let hasExited = false;
  exited.then(() => hasExited = true);
  await waitFor(`clamd to answer on port ${port}`, async () => {
    if (hasExited) throw new Error("clamd exited");
    try {
      using conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode("zPING\0"));
      const buffer = new Uint8Array(16);
      const n = await conn.read(buffer);
      return n !== null && new TextDecoder().decode(buffer.subarray(0, n)).startsWith("PONG");
    } catch (error) {
      if (!(error instanceof Deno.errors.ConnectionRefused)) throw error;
      return false;
    }
  }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 50 });
}

/** A scripted clamd that gives every `zINSTREAM` scan the same verdict; `await using` stops it. */
export interface FakeClamd extends AsyncDisposable {
  /** `127.0.0.1:<port>`, the form `CLAMAV_ADDRESS` takes. */
  readonly address: string;
  /** Scans answered so far. */
  scans(): number;
}

/**
 * Starts a {@linkcode FakeClamd} on `port` (default: a free one) that reads each stream to its
 * zero-length end frame and answers `reply`, e.g. `stream: OK`.
 */
export function startFakeClamd(
  options: { port?: number; reply?: string } = {},
): FakeClamd {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: options.port ?? 0 });
  const reply = new TextEncoder().encode(`${options.reply ?? "stream: OK"}\0`);
  const served: Promise<void>[] = [];
  let scans = 0;

  async function serve(conn: Deno.Conn): Promise<void> {
    try {
      // zINSTREAM\0, then <u32 length><bytes> frames, ended by a zero length.
      let received = new Uint8Array(0);
      const buffer = new Uint8Array(4096);
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) return;
        const next = new Uint8Array(received.byteLength + n);
        next.set(received);
        next.set(buffer.subarray(0, n), received.byteLength);
        received = next;
        if (endsInstream(received)) break;
      }
      scans++;
      await conn.write(reply);
    } catch (error) {
      // A client that gives up mid-scan (a timeout) ends the session; that is not a fault here.
      if (
        !(error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe)
      ) {
        throw error;
      }
    } finally {
      conn.close();
    }
  }

  const accepting = (async () => {
    for await (const conn of listener) served.push(serve(conn));
  })();

  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    scans: () => scans,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      await Promise.all(served);
    },
  };
}

/** True once `bytes` holds the whole `zINSTREAM` command up to its zero-length frame. */
function endsInstream(bytes: Uint8Array): boolean {
  const command = "zINSTREAM\0".length;
  let at = command;
  while (at + 4 <= bytes.byteLength) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0);
    if (length === 0) return true;
    at += 4 + length;
  }
  return false;
}
