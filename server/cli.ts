import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { VERSION } from "../version.ts";

/** Where a command writes and reads; injected so commands run in tests without a terminal. */
export interface CommandIo {
  /** One line to standard output. */
  out(line: string): void;
  /** One line to standard error. */
  err(line: string): void;
  /** The first line of standard input without its line break; null at end of input. */
  readLine(): Promise<string | null>;
}

/** What a command receives: its parsed options and positionals, the environment and the io. */
export interface CommandInput {
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly io: CommandIo;
}

/** One command of the command line, defined in its own file under `server/commands/`. */
export interface CliCommand {
  /** One or two words: `serve`, `users set-role`. */
  readonly name: string;
  /** One line for `--help`. */
  readonly summary: string;
  /** The arguments after the name, for `--help` (e.g. `--email EMAIL`). @default "" */
  readonly usage?: string;
  /** `node:util` parseArgs options; parsing is strict. @default none */
  readonly options?: ParseArgsOptionsConfig;
  /** How many positionals the command takes at most. @default 0 */
  readonly maxPositionals?: number;
  /** Runs the command and returns the exit code (1 on a refused action). */
  run(input: CommandInput): Promise<number>;
}

/** A parsed command line. */
export type ParsedCommand =
  | {
    kind: "run";
    command: CliCommand;
    values: Record<string, string | boolean | undefined>;
    positionals: string[];
  }
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "usage-error"; message: string };

/** The `--help` text listing every command. */
export function usage(commands: readonly CliCommand[]): string {
  const width = Math.max(...commands.map((c) => `${c.name} ${c.usage ?? ""}`.trim().length));
  const lines = commands.map((c) =>
    `  ${`${c.name} ${c.usage ?? ""}`.trim().padEnd(width)}  ${c.summary}`
  );
  return `Usage: bulwark [command] [options]

Commands:
${lines.join("\n")}

Options:
  -h, --help     Show this help
  -V, --version  Show the version

The first command, serve, is the default. Configuration comes from environment
variables (see README.md).`;
}

/**
 * Parses `bulwark [command words] [options]` strictly (`node:util` parseArgs):
 * an unknown command, an unknown or malformed option or a stray argument is a
 * usage error. The first command is the default.
 */
export function parseCommand(
  args: readonly string[],
  commands: readonly CliCommand[],
): ParsedCommand {
  if (args.includes("--help") || args.includes("-h")) return { kind: "help" };
  if (args.includes("--version") || args.includes("-V")) return { kind: "version" };
  const words = args.slice(0, 2).filter((arg) => !arg.startsWith("-"));
  const command =
    (words.length === 2 ? commands.find((c) => c.name === `${words[0]} ${words[1]}`) : undefined) ??
      (words.length > 0 ? commands.find((c) => c.name === words[0]) : commands[0]);
  if (command === undefined) {
    const first = args[0] ?? "";
    const what = first.startsWith("-") ? "option" : "command";
    return { kind: "usage-error", message: `Unknown ${what} "${words.join(" ") || first}"` };
  }
  const rest = args.slice(words.length === 0 ? 0 : command.name.split(" ").length);
  try {
    const { values, positionals } = parseArgs({
      args: [...rest],
      options: command.options ?? {},
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length > (command.maxPositionals ?? 0)) {
      return { kind: "usage-error", message: `Unexpected argument "${positionals.at(-1)}"` };
    }
    return {
      kind: "run",
      command,
      values: values as Record<string, string | boolean | undefined>,
      positionals,
    };
  } catch (error) {
    // parseArgs throws TypeError with an ERR_PARSE_ARGS_* code for every malformed line.
    if (!(error instanceof TypeError)) throw error;
    return { kind: "usage-error", message: error.message };
  }
}

/** Runs the command line: help and version, usage errors (exit 2), or the command's own code. */
export async function runCli(
  args: readonly string[],
  commands: readonly CliCommand[],
  context: { env: Readonly<Record<string, string>>; io: CommandIo },
): Promise<number> {
  const parsed = parseCommand(args, commands);
  switch (parsed.kind) {
    case "help":
      context.io.out(usage(commands));
      return 0;
    case "version":
      context.io.out(`bulwark ${VERSION}`);
      return 0;
    case "usage-error":
      context.io.err(`bulwark: ${parsed.message}\n\n${usage(commands)}`);
      return 2;
  }
  return await parsed.command.run({
    values: parsed.values,
    positionals: parsed.positionals,
    env: context.env,
    io: context.io,
  });
}
