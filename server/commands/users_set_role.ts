import { isRole, ROLES } from "../../services/auth/permissions.ts";
import type { CliCommand } from "../cli.ts";
import { EMAIL_OPTION, runAccountCommand } from "./_accounts.ts";

/** `bulwark users set-role --email EMAIL --role ROLE`: as `PATCH /admin/users/{id}` does it. */
export const usersSetRoleCommand: CliCommand = {
  name: "users set-role",
  summary: "Change an account's role (revokes its sessions and API keys)",
  usage: `--email EMAIL --role ${ROLES.join("|")}`,
  options: { ...EMAIL_OPTION, role: { type: "string" } },
  async run(input) {
    const role = String(input.values.role ?? "");
    if (!isRole(role)) {
      input.io.err(`bulwark: --role must be one of ${ROLES.join(", ")}`);
      return 2;
    }
    return await runAccountCommand(input, async (services, email) => {
      const id = await services.accounts.idOfEmail(email);
      await services.accounts.update({ kind: "cli" }, id, { role });
      input.io.out(id);
    });
  },
};
