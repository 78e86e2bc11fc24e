/**
 * Shared plumbing of the incident commands: each builds the runtime with
 * `createRuntime` on the configured store (a running service's KV file),
 * records itself as the operator's action, prints what it did, and turns a
 * refused action into a clear message and exit code 1.
 *
 * @module
 */
import type { RequestMeta } from "../../services/core/audit.ts";
import { AppError } from "../../services/core/errors.ts";
import type { UserRecord } from "../../services/identity/users.ts";
import type { CommandInput } from "../cli.ts";
import { createRuntime, type Runtime } from "../runtime.ts";
import { createLogger } from "../../services/core/logger.ts";
import { loadCommandConfig } from "./config.ts";

/** A refused command: printed as `bulwark: <message>`, exit code 1. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CommandError";
  }
}

/** What an incident command's body gets. */
export interface OpsContext {
  runtime: Runtime;
  /** Who ran it: `BULWARK_OPERATOR`, else `USER`, else "unknown". */
  operator: string;
  meta: RequestMeta;
  /** The user with this email, or a CommandError naming it. */
  userByEmail(email: string): Promise<UserRecord>;
}

/**
 * Runs an incident command: the body returns the lines to print and the
 * audit details; the command is audited as `ops.command` whether it succeeds
 * or fails.
 */
export async function runOpsCommand(
  name: string,
  input: CommandInput,
  body: (ctx: OpsContext) => Promise<{ lines: string[]; details: Record<string, unknown> }>,
): Promise<number> {
  const config = loadCommandConfig(input.env, input.io);
  if (config === null) return 1;
  const operator = input.env.BULWARK_OPERATOR ?? input.env.USER ?? "unknown";
  const meta: RequestMeta = {
    ip: "cli",
    userAgent: `bulwark-cli/${operator}`,
    requestId: `cli-${name.replaceAll(" ", "-")}`,
  };
  // Log lines (audit events among them) go to stderr: stdout carries only the result.
  const logger = createLogger({ level: config.logLevel, write: (line) => input.io.err(line) });
  await using runtime = await createRuntime(config, { logger });
  const ctx: OpsContext = {
    runtime,
    operator,
    meta,
    async userByEmail(email) {
      const user = await runtime.services.users.getUserByEmail(email);
      if (user === null) throw new CommandError(`no user with email "${email}"`);
      return user;
    },
  };
  try {
    const result = await body(ctx);
    await runtime.services.audit.record({
      type: "ops.command",
      outcome: "success",
      meta,
      details: { command: name, operator, ...result.details },
    });
    for (const line of result.lines) input.io.out(line);
    return 0;
  } catch (error) {
    if (!(error instanceof CommandError || error instanceof AppError)) throw error;
    await runtime.services.audit.record({
      type: "ops.command",
      outcome: "failure",
      meta,
      details: { command: name, operator, error: error.message },
    });
    input.io.err(`bulwark ${name}: ${error.message}`);
    return 1;
  }
}

/** The value of a string option, or undefined. */
export function stringOption(input: CommandInput, name: string): string | undefined {
  const value = input.values[name];
  return typeof value === "string" ? value : undefined;
}
