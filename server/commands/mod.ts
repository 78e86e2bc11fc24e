import type { CliCommand } from "../cli.ts";
import { auditExportCommand } from "./audit_export.ts";
import { auditVerifyCommand } from "./audit_verify.ts";
import { blocksAddCommand, blocksListCommand, blocksRemoveCommand } from "./blocks.ts";
import { checkConfigCommand } from "./check_config.ts";
import { createAdminCommand } from "./create_admin.ts";
import { forensicsCommand } from "./forensics.ts";
import { jwtDropKidCommand } from "./jwt_drop_kid.ts";
import { jwtRotateCommand } from "./jwt_rotate.ts";
import { keysRevokeCommand } from "./keys_revoke.ts";
import { lockdownCommand } from "./lockdown.ts";
import { oauthRevokeCommand } from "./oauth_revoke.ts";
import { serveCommand } from "./serve.ts";
import { sessionsRevokeCommand } from "./sessions_revoke.ts";
import { usersDisableCommand, usersEnableCommand } from "./users_disable.ts";
import { usersLockCommand } from "./users_lock.ts";
import { usersSetRoleCommand } from "./users_set_role.ts";
import { usersUnlockCommand } from "./users_unlock.ts";

/** Every command of the command line, in `--help` order; the first is the default. */
export const COMMANDS: readonly CliCommand[] = [
  serveCommand,
  checkConfigCommand,
  createAdminCommand,
  usersSetRoleCommand,
  usersDisableCommand,
  usersEnableCommand,
  // Incident response (docs/runbooks/).
  sessionsRevokeCommand,
  usersLockCommand,
  usersUnlockCommand,
  keysRevokeCommand,
  jwtRotateCommand,
  jwtDropKidCommand,
  oauthRevokeCommand,
  lockdownCommand,
  blocksListCommand,
  blocksAddCommand,
  blocksRemoveCommand,
  auditExportCommand,
  auditVerifyCommand,
  forensicsCommand,
];
