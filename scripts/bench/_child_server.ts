/**
 * Bulwark as a child process of the bench, started with the flags of
 * `deno task start` (read from deno.json) in development mode on a fresh
 * temporary data folder and a free loopback port, so what /proc says about
 * its memory and CPU is the server's alone.
 */
import { join } from "node:path";

const ROOT = new URL("../../", import.meta.url);
/** How long a child may take to answer its first `/health`. */
const START_TIMEOUT_MS = 60_000;
/** Log lines kept for the error message when the child dies. */
const KEPT_LINES = 40;

/** The `deno run` arguments of `deno task start`, with deno.json and main.ts made absolute. */
export async function startTaskArgs(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))) as {
    tasks: Record<string, string>;
  };
  const task = config.tasks.start;
  if (task === undefined) throw new Error("bench: deno.json has no start task");
  const words = task.split(/\s+/).filter((w) => w !== "");
  if (words[0] !== "deno") throw new Error(`bench: unexpected start task: ${task}`);
  return words.slice(1).flatMap((word) =>
    word === "run"
      ? ["run", "--config", new URL("deno.json", ROOT).pathname]
      : word === "main.ts"
      ? [new URL("main.ts", ROOT).pathname]
      : [word]
  );
}

/** Development settings of a child server in `dir` (its `./data`) on loopback `port` (0: any). */
export function childEnv(dir: string, port: number, logLevel: string): Record<string, string> {
  return {
    APP_ENV: "development",
    DATA_DIR: "./data",
    KV_PATH: join(dir, "data", "bulwark.kv"),
    HOST: "127.0.0.1",
    PORT: String(port),
    LOG_LEVEL: logLevel,
  };
}

/** Calls `each` with every complete line of a child's output stream, until it ends. */
export async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  each: (line: string) => void,
): Promise<void> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      each(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
    }
  }
}

/** A free loopback TCP port: bound, read and released (the child binds it a moment later). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** A running server child; `await using` stops it and removes its data folder. */
export interface ChildServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`. */
  readonly origin: string;
  readonly pid: number;
  /** Log lines at `warn` or above so far (the child runs at LOG_LEVEL=warn). */
  warnings(): number;
  /** Log lines at `error` so far. */
  errors(): number;
  /** The last lines the child wrote, for error messages. */
  tail(): string;
  /** The first lines at `warn` or above (up to 10). */
  firstWarnings(): string[];
}

/**
 * Spawns `deno task start`'s command in a fresh temporary folder (its
 * `./data`, the KV file and uploads in it) with `env` over the development
 * defaults, and waits for `GET /health` to answer 200. The child logs at
 * `warn`: an access-log line per request would make the pipe part of the load.
 */
export async function startChildServer(env: Record<string, string> = {}): Promise<ChildServer> {
  const args = await startTaskArgs();
  const dir = await Deno.makeTempDir({ prefix: "bulwark-bench-child-" });
  const port = freePort();
  const origin = `http://127.0.0.1:${port}`;
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: dir,
    env: { ...childEnv(dir, port, "warn"), ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const kept: string[] = [];
  const first: string[] = [];
  let warnings = 0;
  let errors = 0;
  const reading = Promise.all(
    [child.stdout, child.stderr].map((stream) =>
      forEachLine(stream, (line) => {
        if (line.includes('"level":"error"')) errors++;
        if (/"level":"(warn|error)"/.test(line) && warnings++ < 10) first.push(line);
        kept.push(line);
        if (kept.length > KEPT_LINES) kept.shift();
      })
    ),
  );
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch (error) {
      // Already exited: nothing to stop.
      if (!(error instanceof TypeError)) throw error;
    }
    await child.status;
    await reading;
    await Deno.remove(dir, { recursive: true });
  };
  const server: ChildServer = {
    origin,
    pid: child.pid,
    warnings: () => warnings,
    errors: () => errors,
    tail: () => kept.join("\n"),
    firstWarnings: () => [...first],
    [Symbol.asyncDispose]: stop,
  };
  try {
    const started = performance.now();
    let exited = false;
    void child.status.then(() => exited = true);
    for (;;) {
      const res = await fetch(`${origin}/health`).catch(() => null);
      await res?.body?.cancel();
      if (res?.status === 200) return server;
      if (exited) throw new Error(`bench: the server child exited:\n${server.tail()}`);
      if (performance.now() - started > START_TIMEOUT_MS) {
        throw new Error(`bench: no /health from the server child in 60 s:\n${server.tail()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await stop();
    throw error;
  }
}

/** CPU seconds `pid` has used so far (user + system, Linux /proc), or NaN elsewhere. */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after "(comm) " start at field 3 (state); utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return Number.NaN;
    throw error;
  }
}
