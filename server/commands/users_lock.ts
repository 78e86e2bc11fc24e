import type { CliCommand } from "../cli.ts";
import { CommandError, runOpsCommand, stringOption } from "./_ops.ts";

/**
 * `bulwark users lock EMAIL [--minutes N] [--reason TEXT]`: a user block
 * (its tokens and keys get 423, logins too) and every session revoked.
 */
export const usersLockCommand: CliCommand = {
  name: "users lock",
  summary: "Lock an account: 423 everywhere, sessions revoked (default 24 h)",
  usage: "EMAIL [--minutes N] [--reason TEXT]",
  maxPositionals: 1,
  options: { minutes: { type: "string" }, reason: { type: "string" } },
  run(input) {
    return runOpsCommand("users lock", input, async (ctx) => {
      const email = input.positionals[0];
      if (email === undefined) throw new CommandError("give the account's EMAIL");
      const minutes = Number(stringOption(input, "minutes") ?? 24 * 60);
      if (!Number.isInteger(minutes) || minutes < 1) {
        throw new CommandError("--minutes must be a positive integer");
      }
      const user = await ctx.userByEmail(email);
      const { blocks } = ctx.runtime.services.ops;
      const block = await blocks.add({
        userId: user.id,
        minutes,
        reason: stringOption(input, "reason") ?? "locked by an operator",
        createdBy: `cli:${ctx.operator}`,
      }, ctx.meta);
      const revoked = await ctx.runtime.services.sessions.revokeAllForUser(user.id);
      return {
        lines: [
          `locked ${user.email} (${user.id}) until ${block.expires_at}: block ${block.id}`,
          `revoked ${revoked} session(s)`,
        ],
        details: { user_id: user.id, block_id: block.id, minutes, sessions_revoked: revoked },
      };
    });
  },
};
