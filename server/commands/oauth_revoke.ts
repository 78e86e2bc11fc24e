import type { CliCommand } from "../cli.ts";
import { CommandError, runOpsCommand, stringOption } from "./_ops.ts";

/**
 * `bulwark oauth revoke --client ID [--delete]`: ends every grant (so every
 * access and refresh token issued from one) and consent given to a client.
 * With `--delete` the client is removed too, which also ends its
 * `client_credentials` tokens at once (they hold no grant): the response to a
 * leaked client secret, before registering the client again.
 */
export const oauthRevokeCommand: CliCommand = {
  name: "oauth revoke",
  summary: "Revoke every grant and token of an OAuth2 client (--delete removes it too)",
  usage: "--client ID [--delete]",
  options: { client: { type: "string" }, delete: { type: "boolean" } },
  run(input) {
    return runOpsCommand("oauth revoke", input, async (ctx) => {
      const client = stringOption(input, "client");
      if (client === undefined) throw new CommandError("give --client ID");
      const { oauth2 } = ctx.runtime.services;
      const grants = await oauth2.revokeClient(client, ctx.meta);
      if (input.values.delete === true) {
        await oauth2.deleteClient(client, `operator:${ctx.operator}`, ctx.meta);
      }
      const deleted = input.values.delete === true;
      return {
        lines: [
          `revoked ${grants} grant(s) of client ${client}${deleted ? "; client deleted" : ""}`,
        ],
        details: { client_id: client, grants_revoked: grants, deleted },
      };
    });
  },
};
