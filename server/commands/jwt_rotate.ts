import { randomId, randomToken } from "../../services/core/crypto.ts";
import type { SecretKey } from "../../services/config/config.ts";
import type { CliCommand } from "../cli.ts";
import { runOpsCommand } from "./_ops.ts";

function ringLine(name: string, ring: readonly SecretKey[], fresh: string): string {
  const old = ring.map((k) => `${k.kid}:${new TextDecoder().decode(k.secret)}`);
  return `${name}=${[fresh, ...old].join(",")}`;
}

/**
 * `bulwark jwt rotate [--refresh]`: prints the keyring line to deploy, a new
 * signing key first and the current keys after it (they keep verifying until
 * dropped). The new secret is printed, never audited.
 */
export const jwtRotateCommand: CliCommand = {
  name: "jwt rotate",
  summary: "Print a new access (or --refresh) keyring line with a fresh signing key",
  usage: "[--refresh]",
  options: { refresh: { type: "boolean" } },
  run(input) {
    return runOpsCommand("jwt rotate", input, (ctx) => {
      const refresh = input.values.refresh === true;
      const config = ctx.runtime.deps.config;
      const ring = refresh ? config.refreshKeys : config.accessKeys;
      const kid = `k${randomId().slice(0, 8)}`;
      const name = refresh ? "JWT_REFRESH_SECRETS" : "JWT_ACCESS_SECRETS";
      return Promise.resolve({
        lines: [
          ringLine(name, ring, `${kid}:${randomToken(48)}`),
          `# deploy this to every instance; ${kid} signs from then on, ${
            ring.map((k) => k.kid).join(", ")
          } still verify.`,
          `# once no token signed by an old kid can be alive, drop it: bulwark jwt drop-kid <kid>`,
        ],
        details: { ring: refresh ? "refresh" : "access", new_kid: kid },
      });
    });
  },
};
