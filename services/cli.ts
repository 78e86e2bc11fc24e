/** A parsed command line. */
export type Command =
  | { kind: "serve" }
  | { kind: "check-config" }
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "usage-error"; message: string };

/** The `--help` text. */
export const USAGE = `Usage: bulwark [command]

Commands:
  serve          Run the HTTP service (default)
  check-config   Validate the configuration, print the effective non-secret settings

Options:
  -h, --help     Show this help
  -V, --version  Show the version

Configuration comes from environment variables (see README.md).`;

/** Parses `bulwark [serve|check-config] [--help|--version]`; anything else is a usage error. */
export function parseCommand(args: readonly string[]): Command {
  if (args.includes("--help") || args.includes("-h")) return { kind: "help" };
  if (args.includes("--version") || args.includes("-V")) return { kind: "version" };
  const [first, ...rest] = args;
  if (rest.length > 0) return { kind: "usage-error", message: `Unexpected argument "${rest[0]}"` };
  if (first === undefined || first === "serve") return { kind: "serve" };
  if (first === "check-config") return { kind: "check-config" };
  const what = first.startsWith("-") ? "option" : "command";
  return { kind: "usage-error", message: `Unknown ${what} "${first}"` };
}
