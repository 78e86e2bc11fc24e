import { verifyAudit } from "../../services/ops/audit_log.ts";
import type { CliCommand } from "../cli.ts";
import { CommandError, runOpsCommand } from "./_ops.ts";

/**
 * `bulwark audit verify`: checks every hash chain and signed checkpoint;
 * prints one line per problem (where: chain, seq, record id) and exits 1 if any.
 */
export const auditVerifyCommand: CliCommand = {
  name: "audit verify",
  summary: "Verify the audit hash chains and signed checkpoints",
  async run(input) {
    let failed: string[] = [];
    const code = await runOpsCommand("audit verify", input, async (ctx) => {
      const { config } = ctx.runtime.deps;
      const result = await verifyAudit(ctx.runtime.deps.kv, {
        signingKey: config.auditSigningKey,
        now: ctx.runtime.deps.clock.now(),
        retentionDays: config.auditRetentionDays,
      });
      for (const warning of result.warnings) input.io.err(`warning: ${warning}`);
      if (!result.ok) {
        failed = result.problems.map((p) => `${p.kind}: chain ${p.chain}: ${p.message}`);
        await ctx.runtime.services.audit.record({
          type: "ops.audit_verify_failed",
          outcome: "failure",
          meta: ctx.meta,
          details: { problems: failed.slice(0, 20) },
        });
        for (const line of failed) input.io.out(line);
        throw new CommandError(`${result.problems.length} problem(s) in ${result.records} records`);
      }
      return {
        lines: [
          `ok: ${result.records} records in ${result.chains} chain(s), ${result.checkpoints} checkpoint(s)`,
        ],
        details: { records: result.records, chains: result.chains },
      };
    });
    return code;
  },
};
