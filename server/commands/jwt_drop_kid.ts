import type { CliCommand } from "../cli.ts";
import { CommandError, runOpsCommand } from "./_ops.ts";

/**
 * `bulwark jwt drop-kid KID`: prints the keyring line without KID and what
 * deploying it does (every token KID signed is refused at once). Refuses to
 * drop the only key or the signing key.
 */
export const jwtDropKidCommand: CliCommand = {
  name: "jwt drop-kid",
  summary: "Print the keyring line without KID (invalidates every token it signed)",
  usage: "KID",
  maxPositionals: 1,
  run(input) {
    return runOpsCommand("jwt drop-kid", input, (ctx) => {
      const kid = input.positionals[0];
      if (kid === undefined) throw new CommandError("give the KID to drop");
      const config = ctx.runtime.deps.config;
      const lines: string[] = [];
      let found = false;
      for (
        const [name, ring] of [["JWT_ACCESS_SECRETS", config.accessKeys], [
          "JWT_REFRESH_SECRETS",
          config.refreshKeys,
        ]] as const
      ) {
        const index = ring.findIndex((k) => k.kid === kid);
        if (index === -1) continue;
        found = true;
        if (index === 0) {
          throw new CommandError(`${kid} signs ${name}: run "bulwark jwt rotate" and deploy first`);
        }
        const rest = ring.filter((k) => k.kid !== kid).map((k) =>
          `${k.kid}:${new TextDecoder().decode(k.secret)}`
        );
        lines.push(`${name}=${rest.join(",")}`);
      }
      if (!found) throw new CommandError(`no key with kid "${kid}" in the configured keyrings`);
      lines.push(
        `# deploy this to every instance: every token signed by ${kid} is then refused (401 token_invalid);`,
        `# sessions whose refresh token it signed must log in again. If ${kid} leaked, also run:`,
        `#   bulwark sessions revoke --all`,
      );
      return Promise.resolve({ lines, details: { kid } });
    });
  },
};
