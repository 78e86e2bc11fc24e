import type { CliCommand } from "../cli.ts";
import { EMAIL_OPTION, runAccountCommand } from "./_accounts.ts";

function setDisabled(name: string, disabled: boolean, summary: string): CliCommand {
  return {
    name,
    summary,
    usage: "--email EMAIL",
    options: EMAIL_OPTION,
    maxPositionals: 1,
    run: (input) =>
      runAccountCommand(input, async (services, email) => {
        const id = await services.accounts.idOfEmail(email);
        await services.accounts.update({ kind: "cli" }, id, { disabled });
        input.io.out(id);
      }),
  };
}

/** `bulwark users disable --email EMAIL`: as the admin API, every credential revoked at once. */
export const usersDisableCommand: CliCommand = setDisabled(
  "users disable",
  true,
  "Disable an account (revokes its sessions and API keys)",
);

/** `bulwark users enable --email EMAIL`. */
export const usersEnableCommand: CliCommand = setDisabled(
  "users enable",
  false,
  "Enable a disabled account",
);
