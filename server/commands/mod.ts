import type { CliCommand } from "../cli.ts";
import { checkConfigCommand } from "./check_config.ts";
import { serveCommand } from "./serve.ts";

/** Every command of the command line, in `--help` order; the first is the default. */
export const COMMANDS: readonly CliCommand[] = [serveCommand, checkConfigCommand];
