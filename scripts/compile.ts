// deno-lint-ignore-file no-console -- command-line output
/**
 * Builds the self-contained `bulwark` executable with `deno compile`.
 *
 *     deno task compile [--output dist/bulwark] [--target <triple>] [--data-dir ./data]
 *
 * `deno compile` appends the program to a runtime base, `denort`, which it downloads for the
 * running Deno version (and caches under `$DENO_DIR/dl/`) unless `DENORT_BIN` names a local copy.
 * Offline, with neither, this script explains that and exits 3.
 *
 * Exit codes: 0 built, 1 compile failed, 2 usage error, 3 no runtime base available.
 */
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

/** The project root (the folder holding deno.json). */
export const ROOT_DIR: string = fileURLToPath(new URL("../", import.meta.url));

/** Where the binary goes unless `--output` says otherwise (relative to the project root). */
export const DEFAULT_OUTPUT = "dist/bulwark";

/**
 * The one folder the binary may write: the default `DATA_DIR` (KV store, dev secrets).
 *
 * `deno compile` stores permission flags verbatim in the binary (`"allow_write":["./data"]`) and
 * the binary resolves them when it starts, so a relative path means `./data` under the working
 * directory the binary is started from, not the build folder. Operators who keep data elsewhere
 * build with `--data-dir /var/lib/bulwark` (absolute) and set `DATA_DIR`/`KV_PATH` inside it; a
 * `KV_PATH` outside this folder is refused with `NotCapable` at start-up.
 */
export const DEFAULT_DATA_DIR = "./data";

/** Exit code when `deno compile` has no runtime base to build on. */
export const EXIT_NO_RUNTIME_BASE = 3;

/** Usage text of the script. */
export const COMPILE_USAGE = `Usage: deno task compile [options]

Options:
  -o, --output <path>   Binary to write (default ${DEFAULT_OUTPUT}, relative to the project root)
      --target <triple> Cross-compile target, passed to deno compile (e.g. aarch64-unknown-linux-gnu)
      --data-dir <path> The only folder the binary may write (default ${DEFAULT_DATA_DIR}; relative
                        paths are resolved against the binary's working directory at start-up)
  -h, --help            Show this help

deno compile needs a runtime base (denort) for the running Deno version. It is downloaded from the
internet and cached in DENO_DIR; offline, set DENORT_BIN to the path of a local denort binary.`;

/** Parsed options of the script. */
export interface CompileOptions {
  /** Absolute path of the binary to write. */
  output: string;
  target?: string;
  dataDir: string;
}

/** The result of parsing the command line. */
export type CompileCommand =
  | { kind: "compile"; options: CompileOptions }
  | { kind: "help" }
  | { kind: "usage-error"; message: string };

/** Parses the script's arguments; `baseDir` resolves a relative `--output`. */
export function parseCompileArgs(args: readonly string[], baseDir: string): CompileCommand {
  let values: ReturnType<typeof parseRawArgs>;
  try {
    values = parseRawArgs(args);
  } catch (error) {
    return { kind: "usage-error", message: error instanceof Error ? error.message : `${error}` };
  }
  if (values.help === true) return { kind: "help" };
  for (const name of ["output", "target", "data-dir"] as const) {
    if (values[name] === "") return { kind: "usage-error", message: `--${name} must not be empty` };
  }
  const options: CompileOptions = {
    output: resolve(baseDir, values.output ?? join(ROOT_DIR, DEFAULT_OUTPUT)),
    dataDir: values["data-dir"] ?? DEFAULT_DATA_DIR,
  };
  if (values.target !== undefined) options.target = values.target;
  return { kind: "compile", options };
}

/** Every `*_worker.ts` anywhere below `services/`, relative and sorted, for `--include`. */
export async function findWorkerModules(rootDir: string = ROOT_DIR): Promise<string[]> {
  const found: string[] = [];
  async function walk(dir: string): Promise<void> {
    for await (const entry of Deno.readDir(join(rootDir, dir))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile && entry.name.endsWith("_worker.ts")) found.push(path);
    }
  }
  try {
    await walk("services");
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return found.sort();
}

/**
 * V8 heap settings of the service, as in deno.json's `start` task: a 2 MiB semi-space (young
 * objects are collected before the young generation grows to 16 MiB × 3) and an old generation
 * allowed to grow 30% past the live size before the next full collection, instead of V8's
 * default of up to 4×. Under mixed load this holds one process near 150 MiB resident instead of
 * 230-250 MiB, with no measurable throughput cost (README "Performance").
 */
export const V8_FLAGS = "--max-semi-space-size=2,--heap-growing-percent=30";

/**
 * The `deno compile` arguments, narrowest permissions that run the service:
 * - `--allow-net`: listens on the configured HOST/PORT (runtime settings) and may reach KV_URL.
 * - `--allow-env`: configuration is the whole environment (`Deno.env.toObject()`).
 * - `--allow-read` unrestricted: `*_FILE` secrets and TLS files live where the operator puts them.
 * - `--allow-write` only the data folder (see {@linkcode DEFAULT_DATA_DIR}).
 * - `--allow-sys=hostname,networkInterfaces` only: nodemailer names the client in SMTP HELO
 *   (`os.hostname()`, `os.networkInterfaces()`); nothing else the service runs asks for more.
 * - `--allow-ffi`: native bcrypt (npm `bcrypt`, an N-API addon). `deno compile` embeds
 *   npm packages (the global cache with `nodeModulesDir: "none"`), the addon's prebuilt `.node`
 *   files for every platform included, and writes the one it loads out at start-up; where it
 *   cannot load, the service falls back to bcryptjs workers (logged at start-up). Operators
 *   who refuse FFI build without it and set `BCRYPT_BACKEND=js`.
 * - `--no-prompt`: a compiled binary otherwise prompts on a TTY; a service must fail instead.
 * - `--unstable-kv`: also set by deno.json's `"unstable": ["kv"]`, which compile honours;
 *   given explicitly so the binary keeps KV whatever the config says.
 * - {@linkcode V8_FLAGS}: the heap bounds of `deno task start`, embedded in the binary.
 */
export function buildCompileArgs(options: CompileOptions, workers: readonly string[]): string[] {
  return [
    "compile",
    "--config",
    "deno.json",
    "--no-prompt",
    "--allow-net",
    "--allow-env",
    "--allow-read",
    `--allow-write=${options.dataDir}`,
    "--allow-sys=hostname,networkInterfaces",
    "--allow-ffi",
    "--unstable-kv",
    `--v8-flags=${V8_FLAGS}`,
    ...workers.flatMap((worker) => ["--include", worker]),
    ...(options.target === undefined ? [] : ["--target", options.target]),
    "--output",
    options.output,
    "main.ts",
  ];
}

/** What is known, without compiling, about the runtime base `deno compile` will use. */
export type RuntimeBaseStatus =
  | { kind: "denort-bin"; path: string }
  | { kind: "denort-bin-missing"; path: string }
  | { kind: "cached"; path: string }
  | { kind: "unknown"; cachePath: string | undefined };

/** Deno's target triple of this machine, the default of `--target`. */
export function hostTarget(): string {
  return Deno.build.target;
}

/**
 * Where `deno compile` caches the downloaded base for `target`
 * (`$DENO_DIR/dl/release/v<version>/denort-<target>.zip`, stable releases), or `undefined` when
 * `deno info` cannot tell where DENO_DIR is.
 */
export async function denortCachePath(target: string = hostTarget()): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return undefined;
    const info: unknown = JSON.parse(new TextDecoder().decode(out.stdout));
    if (typeof info !== "object" || info === null || !("denoDir" in info)) return undefined;
    if (typeof info.denoDir !== "string") return undefined;
    return join(info.denoDir, "dl", "release", `v${Deno.version.deno}`, `denort-${target}.zip`);
  } catch {
    return undefined;
  }
}

/** Checks `DENORT_BIN`, then the download cache; never compiles or downloads. */
export async function runtimeBaseStatus(target: string = hostTarget()): Promise<RuntimeBaseStatus> {
  const denortBin = Deno.env.get("DENORT_BIN");
  if (denortBin !== undefined && denortBin !== "") {
    return (await isFile(denortBin))
      ? { kind: "denort-bin", path: denortBin }
      : { kind: "denort-bin-missing", path: denortBin };
  }
  const cachePath = await denortCachePath(target);
  if (cachePath !== undefined && await isFile(cachePath)) {
    return { kind: "cached", path: cachePath };
  }
  return { kind: "unknown", cachePath };
}

/** True when `deno compile`'s error output says it could not set up its runtime base. */
export function isMissingRuntimeBaseError(stderr: string): boolean {
  return /Setting up base binary|Could not find denort|denort-[\w-]+\.zip/i.test(stripAnsi(stderr));
}

/** Removes terminal colour codes. */
export function stripAnsi(text: string): string {
  // deno-lint-ignore no-control-regex -- matching the ESC of colour codes is the point
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

/** The explanation printed when no runtime base is available. */
export function missingRuntimeBaseMessage(
  target: string,
  cachePath: string | undefined,
  cause = "the download failed (no internet access?).",
): string {
  return [
    `bulwark compile: no Deno runtime base (denort ${Deno.version.deno} for ${target}) is available.`,
    "  deno compile builds on denort, which it downloads unless DENORT_BIN names a local copy;",
    `  ${cause}`,
    "  Fix: get denort for this Deno version and target (the denort-<target>.zip of the Deno",
    "  release), unzip it, and run again with",
    "    DENORT_BIN=/path/to/denort deno task compile",
    ...(cachePath === undefined ? [] : [`  or put the zip itself at ${cachePath}`]),
    "  The binary itself is not faked: without a real denort no executable is written.",
  ].join("\n");
}

/** Runs `deno compile`, streaming its output; returns the script's exit code. */
export async function compile(options: CompileOptions): Promise<number> {
  const target = options.target ?? hostTarget();
  const status = await runtimeBaseStatus(target);
  if (status.kind === "denort-bin-missing") {
    console.error(
      missingRuntimeBaseMessage(target, undefined, `DENORT_BIN="${status.path}" is not a file.`),
    );
    return EXIT_NO_RUNTIME_BASE;
  }
  const workers = await findWorkerModules();
  const args = buildCompileArgs(options, workers);
  await Deno.mkdir(dirname(options.output), { recursive: true });
  console.error(`bulwark compile: deno ${args.map(quoteArg).join(" ")}`);
  if (status.kind === "denort-bin") console.error(`bulwark compile: runtime base ${status.path}`);

  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT_DIR,
    stdin: "null",
    stdout: "inherit",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stderr) {
    await Deno.stderr.write(chunk);
    stderr += decoder.decode(chunk, { stream: true });
  }
  const { success } = await child.status;
  if (success) {
    const shown = relative(Deno.cwd(), options.output);
    const size = (await Deno.stat(options.output).catch(() => null))?.size;
    console.error(
      `bulwark compile: wrote ${
        isAbsolute(shown) || shown.startsWith("..") ? options.output : shown
      }` +
        (size === undefined ? "" : ` (${(size / 1024 / 1024).toFixed(1)} MiB)`),
    );
    return 0;
  }
  if (isMissingRuntimeBaseError(stderr)) {
    console.error(
      "\n" +
        missingRuntimeBaseMessage(target, status.kind === "unknown" ? status.cachePath : undefined),
    );
    return EXIT_NO_RUNTIME_BASE;
  }
  console.error("bulwark compile: deno compile failed (see the errors above).");
  return 1;
}

/** The script's entry point; returns its exit code. */
export async function main(args: readonly string[]): Promise<number> {
  // `deno task` runs in the project root; INIT_CWD is where the user typed the command.
  const command = parseCompileArgs(args, Deno.env.get("INIT_CWD") ?? Deno.cwd());
  switch (command.kind) {
    case "help":
      console.log(COMPILE_USAGE);
      return 0;
    case "usage-error":
      console.error(`bulwark compile: ${command.message}\n\n${COMPILE_USAGE}`);
      return 2;
    case "compile":
      return await compile(command.options);
  }
}

function parseRawArgs(args: readonly string[]) {
  return parseArgs({
    args: [...args],
    strict: true,
    allowPositionals: false,
    options: {
      output: { type: "string", short: "o" },
      target: { type: "string" },
      "data-dir": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  }).values;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

function quoteArg(arg: string): string {
  return /^[\w./=:,@+-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
