import type { CliCommand } from "../cli.ts";
import { CommandError, runOpsCommand, stringOption } from "./_ops.ts";

/**
 * `bulwark lockdown on|off [--reason TEXT]`: the kill switch. While on, every
 * instance (within its block-view poll, 2 s) refuses logins, registrations,
 * refreshes, password resets and OAuth2 grants with 503 `maintenance`, except
 * for admin credentials.
 */
export const lockdownCommand: CliCommand = {
  name: "lockdown",
  summary: "Kill switch: refuse sign-ins everywhere (on) or restore them (off)",
  usage: "on|off [--reason TEXT]",
  maxPositionals: 1,
  options: { reason: { type: "string" } },
  run(input) {
    return runOpsCommand("lockdown", input, async (ctx) => {
      const mode = input.positionals[0];
      if (mode !== "on" && mode !== "off") throw new CommandError('give "on" or "off"');
      const reason = stringOption(input, "reason") ?? "";
      const state = await ctx.runtime.services.ops.blocks.setLockdown(
        mode === "on",
        reason,
        `cli:${ctx.operator}`,
        ctx.meta,
      );
      return {
        lines: [
          `lockdown ${mode} at ${state.at}${
            reason === "" ? "" : ` (${reason})`
          }; every instance applies it within seconds`,
        ],
        details: { on: state.on, reason },
      };
    });
  },
};
