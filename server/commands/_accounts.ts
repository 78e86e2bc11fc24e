import { z } from "zod";
import { AppError } from "../../services/core/errors.ts";
import { createLogger } from "../../services/core/logger.ts";
import type { Services } from "../../services/container.ts";
import type { CommandInput } from "../cli.ts";
import { createRuntime } from "../runtime.ts";
import { loadCommandConfig } from "./config.ts";

const EmailArg = z.string().trim().max(254).pipe(z.email());

/**
 * Runs an account command on the configured store (the embedded file a running
 * server also uses, KV Connect or Deploy's): validates `--email`, opens the one
 * runtime, and turns a refused action into its message and exit code 1.
 */
export async function runAccountCommand(
  input: CommandInput,
  action: (services: Services, email: string) => Promise<void>,
): Promise<number> {
  const { io } = input;
  // `--email EMAIL`, or the email as the one positional (`users disable EMAIL`).
  const email = EmailArg.safeParse(input.values.email ?? input.positionals[0] ?? "");
  if (!email.success) {
    io.err("bulwark: --email must be an email address");
    return 2;
  }
  const config = loadCommandConfig(input.env, io);
  if (config === null) return 1;
  // Log lines (audit events among them) go to stderr: stdout carries only the result.
  const logger = createLogger({ level: config.logLevel, write: (line) => io.err(line) });
  await using runtime = await createRuntime(config, { logger });
  try {
    await action(runtime.services, email.data);
    return 0;
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    io.err(`bulwark: ${error.message}`);
    for (const field of error.errors ?? []) io.err(`  - ${field.path} ${field.message}`);
    return 1;
  }
}

/** The `--email EMAIL` option of the account commands. */
export const EMAIL_OPTION = { email: { type: "string" } } as const;
