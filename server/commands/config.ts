import { type Config, ConfigError, loadConfig } from "../../services/config/config.ts";
import type { CommandIo } from "../cli.ts";

/**
 * Loads the configuration for a command; a configuration problem is written to
 * standard error as one message naming every setting, and null is returned.
 */
export function loadCommandConfig(
  env: Readonly<Record<string, string>>,
  io: CommandIo,
): Config | null {
  try {
    return loadConfig({ ...env });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.err(error.message);
    return null;
  }
}
