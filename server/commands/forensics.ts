import { exportAudit } from "../../services/ops/audit_log.ts";
import type { CliCommand } from "../cli.ts";
import { CommandError, runOpsCommand, stringOption } from "./_ops.ts";

/**
 * `bulwark forensics --user EMAIL`: one JSON bundle for the incident record:
 * the account (no password hash), its sessions, API keys, blocks and whole
 * audit trail. OAuth2 consents appear once the OAuth2 server exists.
 */
export const forensicsCommand: CliCommand = {
  name: "forensics",
  summary: "Print one JSON bundle of an account: sessions, keys, blocks, audit trail",
  usage: "--user EMAIL",
  options: { user: { type: "string" } },
  run(input) {
    return runOpsCommand("forensics", input, async (ctx) => {
      const email = stringOption(input, "user");
      if (email === undefined) throw new CommandError("give --user EMAIL");
      const user = await ctx.userByEmail(email);
      const { sessions, apiKeys, ops } = ctx.runtime.services;
      const { password_hash: _hash, password_history: _history, ...account } = user;
      const trail = [];
      for await (
        const event of exportAudit(ctx.runtime.deps.kv, {
          since: new Date(0),
          until: new Date(ctx.runtime.deps.clock.now().getTime() + 1000),
          userId: user.id,
        })
      ) trail.push(event);
      const bundle = {
        generated_at: ctx.runtime.deps.clock.now().toISOString(),
        generated_by: ctx.operator,
        account,
        sessions: (await sessions.listForUser(user.id)).map((
          { fingerprint: _f, csrf_hash: _c, refresh_jti: _j, ...s },
        ) => s),
        api_keys: await apiKeys.list(user.id),
        oauth_consents: "not available in this build",
        blocks: (await ops.blocks.list()).filter((b) => b.kind === "user" && b.value === user.id),
        audit: trail,
      };
      return {
        lines: [JSON.stringify(bundle, null, 2)],
        details: { user_id: user.id, audit_events: trail.length },
      };
    });
  },
};
