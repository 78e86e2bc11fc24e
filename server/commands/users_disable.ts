import type { CliCommand } from "../cli.ts";
import { CommandError, runOpsCommand } from "./_ops.ts";

/**
 * `bulwark users disable EMAIL`: the account can no longer log in, and every
 * session and API key it holds is revoked.
 */
export const usersDisableCommand: CliCommand = {
  name: "users disable",
  summary: "Disable an account and revoke its sessions and API keys",
  usage: "EMAIL",
  maxPositionals: 1,
  run(input) {
    return runOpsCommand("users disable", input, async (ctx) => {
      const email = input.positionals[0];
      if (email === undefined) throw new CommandError("give the account's EMAIL");
      const user = await ctx.userByEmail(email);
      const { users, sessions, apiKeys } = ctx.runtime.services;
      await users.updateUser(user.id, (u) => ({ ...u, disabled: true }));
      const revoked = await sessions.revokeAllForUser(user.id);
      const keys = await apiKeys.list(user.id);
      for (const key of keys) await apiKeys.revoke(user.id, key.id, ctx.meta);
      return {
        lines: [
          `disabled ${user.email} (${user.id}); revoked ${revoked} session(s) and ${keys.length} API key(s)`,
        ],
        details: { user_id: user.id, sessions_revoked: revoked, keys_revoked: keys.length },
      };
    });
  },
};
