import { describeConfig } from "../../services/config/config.ts";
import type { CliCommand } from "../cli.ts";
import { loadCommandConfig } from "./config.ts";

/** `bulwark check-config`: validates the configuration and prints the effective non-secret settings. */
export const checkConfigCommand: CliCommand = {
  name: "check-config",
  summary: "Validate the configuration, print the effective non-secret settings",
  run({ env, io }) {
    const config = loadCommandConfig(env, io);
    if (config === null) return Promise.resolve(1);
    io.out(JSON.stringify(describeConfig(config), null, 2));
    return Promise.resolve(0);
  },
};
