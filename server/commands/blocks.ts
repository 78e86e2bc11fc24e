import type { CliCommand } from "../cli.ts";
import { CommandError, runOpsCommand, stringOption } from "./_ops.ts";

/** `bulwark blocks list`: active blocks as JSON lines. */
export const blocksListCommand: CliCommand = {
  name: "blocks list",
  summary: "List active IP, CIDR and user blocks as JSON lines",
  run(input) {
    return runOpsCommand("blocks list", input, async (ctx) => {
      const list = await ctx.runtime.services.ops.blocks.list();
      return { lines: list.map((b) => JSON.stringify(b)), details: { count: list.length } };
    });
  },
};

/** `bulwark blocks add --ip IP | --cidr CIDR | --user EMAIL --minutes N --reason TEXT`. */
export const blocksAddCommand: CliCommand = {
  name: "blocks add",
  summary: "Block an IP, a CIDR or a user for some minutes",
  usage: "--ip IP | --cidr CIDR | --user EMAIL --minutes N --reason TEXT",
  options: {
    ip: { type: "string" },
    cidr: { type: "string" },
    user: { type: "string" },
    minutes: { type: "string" },
    reason: { type: "string" },
  },
  run(input) {
    return runOpsCommand("blocks add", input, async (ctx) => {
      const minutes = Number(stringOption(input, "minutes") ?? "");
      const reason = stringOption(input, "reason");
      if (reason === undefined) throw new CommandError("give --reason TEXT");
      const email = stringOption(input, "user");
      const block = await ctx.runtime.services.ops.blocks.add({
        ip: stringOption(input, "ip"),
        cidr: stringOption(input, "cidr"),
        userId: email === undefined ? undefined : (await ctx.userByEmail(email)).id,
        minutes,
        reason,
        createdBy: `cli:${ctx.operator}`,
      }, ctx.meta);
      return {
        lines: [`blocked ${block.kind} ${block.value} until ${block.expires_at}: ${block.id}`],
        details: { block_id: block.id },
      };
    });
  },
};

/** `bulwark blocks remove ID`. */
export const blocksRemoveCommand: CliCommand = {
  name: "blocks remove",
  summary: "Lift a block by id",
  usage: "ID",
  maxPositionals: 1,
  run(input) {
    return runOpsCommand("blocks remove", input, async (ctx) => {
      const id = input.positionals[0];
      if (id === undefined) throw new CommandError("give the block ID");
      const block = await ctx.runtime.services.ops.blocks.remove(
        id,
        `cli:${ctx.operator}`,
        ctx.meta,
      );
      return {
        lines: [`lifted block ${id} (${block.kind} ${block.value})`],
        details: { block_id: id },
      };
    });
  },
};
