import { exportAudit } from "../../services/ops/audit_log.ts";
import type { CliCommand } from "../cli.ts";
import { CommandError, runOpsCommand, stringOption } from "./_ops.ts";

function parseTime(value: string | undefined, name: string): Date {
  const time = value === undefined ? NaN : Date.parse(value);
  if (Number.isNaN(time)) throw new CommandError(`${name} must be an RFC 3339 time or date`);
  return new Date(time);
}

/**
 * `bulwark audit export --since T --until T [--type TYPE] [--user EMAIL]`:
 * one JSON object per line on standard output, for ELK or any SIEM.
 */
export const auditExportCommand: CliCommand = {
  name: "audit export",
  summary: "Print audit events of [--since, --until) as JSON lines",
  usage: "--since TIME --until TIME [--type TYPE] [--user EMAIL]",
  options: {
    since: { type: "string" },
    until: { type: "string" },
    type: { type: "string" },
    user: { type: "string" },
  },
  run(input) {
    return runOpsCommand("audit export", input, async (ctx) => {
      const since = parseTime(stringOption(input, "since"), "--since");
      const until = parseTime(stringOption(input, "until"), "--until");
      if (since >= until) throw new CommandError("--since must be before --until");
      const email = stringOption(input, "user");
      const userId = email === undefined ? undefined : (await ctx.userByEmail(email)).id;
      const type = stringOption(input, "type");
      const lines: string[] = [];
      for await (const event of exportAudit(ctx.runtime.deps.kv, { since, until, type, userId })) {
        lines.push(JSON.stringify(event));
      }
      return {
        lines,
        details: {
          since: since.toISOString(),
          until: until.toISOString(),
          type: type ?? null,
          user_id: userId ?? null,
          exported: lines.length,
        },
      };
    });
  },
};
