import type { CliCommand } from "../cli.ts";
import { CommandError, runOpsCommand, stringOption } from "./_ops.ts";

/**
 * `bulwark oauth revoke --client ID`. TODO(#13): the OAuth2 authorization
 * server is not in this build yet; until it lands the command refuses with a
 * clear message (and the refusal is audited) instead of pretending to work.
 */
export const oauthRevokeCommand: CliCommand = {
  name: "oauth revoke",
  summary: "Revoke every grant and token of an OAuth2 client (needs the OAuth2 server)",
  usage: "--client ID",
  options: { client: { type: "string" } },
  run(input) {
    return runOpsCommand("oauth revoke", input, () => {
      const client = stringOption(input, "client");
      if (client === undefined) throw new CommandError("give --client ID");
      throw new CommandError(
        "the OAuth2 server is not available in this build; nothing was revoked",
      );
    });
  },
};
