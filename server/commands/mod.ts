import type { CliCommand } from "../cli.ts";
import { checkConfigCommand } from "./check_config.ts";
import { createAdminCommand } from "./create_admin.ts";
import { serveCommand } from "./serve.ts";
import { usersDisableCommand, usersEnableCommand } from "./users_disable.ts";
import { usersSetRoleCommand } from "./users_set_role.ts";

/** Every command of the command line, in `--help` order; the first is the default. */
export const COMMANDS: readonly CliCommand[] = [
  serveCommand,
  checkConfigCommand,
  createAdminCommand,
  usersSetRoleCommand,
  usersDisableCommand,
  usersEnableCommand,
];
