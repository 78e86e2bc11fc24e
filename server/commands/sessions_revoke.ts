import { sessionsPrefix } from "../../services/core/kv_keys.ts";
import type { SessionRecord } from "../../services/auth/sessions.ts";
import type { CliCommand } from "../cli.ts";
import { CommandError, runOpsCommand, stringOption } from "./_ops.ts";

/**
 * `bulwark sessions revoke --all | --user EMAIL`: deletes sessions, so every
 * refresh token dies and every access token fails its session check at once.
 */
export const sessionsRevokeCommand: CliCommand = {
  name: "sessions revoke",
  summary: "Revoke every session (--all) or one user's (--user EMAIL)",
  usage: "--all | --user EMAIL",
  options: { all: { type: "boolean" }, user: { type: "string" } },
  run(input) {
    return runOpsCommand("sessions revoke", input, async (ctx) => {
      const email = stringOption(input, "user");
      const all = input.values.all === true;
      if (all === (email !== undefined)) {
        throw new CommandError("give exactly one of --all or --user EMAIL");
      }
      const { sessions } = ctx.runtime.services;
      if (email !== undefined) {
        const user = await ctx.userByEmail(email);
        const count = await sessions.revokeAllForUser(user.id);
        return {
          lines: [`revoked ${count} session(s) of ${user.email} (${user.id})`],
          details: { user_id: user.id, revoked: count },
        };
      }
      let count = 0;
      for await (
        const entry of ctx.runtime.deps.kv.list<SessionRecord>({ prefix: sessionsPrefix() })
      ) {
        if (await sessions.revokeSession(entry.value.id)) count++;
      }
      return {
        lines: [`revoked ${count} session(s) of every user`],
        details: { all: true, revoked: count },
      };
    });
  },
};
