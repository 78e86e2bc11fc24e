import type { CliCommand } from "../cli.ts";
import { CommandError, runOpsCommand } from "./_ops.ts";

/** `bulwark users unlock EMAIL`: lifts every block of the user and clears its login lockout. */
export const usersUnlockCommand: CliCommand = {
  name: "users unlock",
  summary: "Unlock an account: lift its blocks and clear its login lockout",
  usage: "EMAIL",
  maxPositionals: 1,
  run(input) {
    return runOpsCommand("users unlock", input, async (ctx) => {
      const email = input.positionals[0];
      if (email === undefined) throw new CommandError("give the account's EMAIL");
      const user = await ctx.userByEmail(email);
      const { blocks } = ctx.runtime.services.ops;
      const lifted: string[] = [];
      for (const block of await blocks.list()) {
        if (block.kind === "user" && block.value === user.id) {
          await blocks.remove(block.id, `cli:${ctx.operator}`, ctx.meta);
          lifted.push(block.id);
        }
      }
      await ctx.runtime.services.lockout.clear(user.email);
      return {
        lines: [
          `unlocked ${user.email} (${user.id}): ${lifted.length} block(s) lifted, lockout cleared`,
        ],
        details: { user_id: user.id, blocks_lifted: lifted },
      };
    });
  },
};
