import type { ApiKeyRecord } from "../../services/api_keys/api_keys.ts";
import { apiKeysPrefix } from "../../services/core/kv_keys.ts";
import type { CliCommand } from "../cli.ts";
import { CommandError, runOpsCommand, stringOption } from "./_ops.ts";

/** `bulwark keys revoke --user EMAIL | --all`: API keys stop working at once. */
export const keysRevokeCommand: CliCommand = {
  name: "keys revoke",
  summary: "Revoke one user's API keys (--user EMAIL) or every key (--all)",
  usage: "--user EMAIL | --all",
  options: { all: { type: "boolean" }, user: { type: "string" } },
  run(input) {
    return runOpsCommand("keys revoke", input, async (ctx) => {
      const email = stringOption(input, "user");
      const all = input.values.all === true;
      if (all === (email !== undefined)) {
        throw new CommandError("give exactly one of --all or --user EMAIL");
      }
      const { apiKeys } = ctx.runtime.services;
      const targets: Array<[string, string]> = [];
      if (email !== undefined) {
        const user = await ctx.userByEmail(email);
        for (const key of await apiKeys.list(user.id)) targets.push([user.id, key.id]);
      } else {
        for await (const e of ctx.runtime.deps.kv.list<ApiKeyRecord>({ prefix: apiKeysPrefix() })) {
          targets.push([e.value.user_id, e.value.id]);
        }
      }
      for (const [userId, keyId] of targets) await apiKeys.revoke(userId, keyId, ctx.meta);
      return {
        lines: [`revoked ${targets.length} API key(s)${all ? " of every user" : ` of ${email}`}`],
        details: { all, revoked: targets.length },
      };
    });
  },
};
