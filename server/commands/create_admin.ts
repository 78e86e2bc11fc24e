import { ValidationError } from "../../services/core/errors.ts";
import type { CliCommand } from "../cli.ts";
import { EMAIL_OPTION, runAccountCommand } from "./_accounts.ts";

/**
 * `bulwark create-admin --email EMAIL`: the password comes from standard input
 * (one line; never argv or the environment, which other users and logs can see),
 * and must pass the password policy. Prints the account id.
 */
export const createAdminCommand: CliCommand = {
  name: "create-admin",
  summary: "Create an admin account (password on stdin), or promote an existing account",
  usage: "--email EMAIL",
  options: EMAIL_OPTION,
  run: (input) =>
    runAccountCommand(input, async (services, email) => {
      const password = await input.io.readLine();
      if (password === null || password === "") {
        throw new ValidationError("Give the password on standard input (one line)");
      }
      const { id, created } = await services.accounts.createAdmin(email, password);
      input.io.err(
        created
          ? "Created an admin account"
          : "Promoted the existing account to admin with this password; its sessions, keys and grants ended",
      );
      input.io.out(id);
    }),
};
