/**
 * Settings of the OAuth2 authorization server and of upstream identity providers.
 * Spread into `SETTINGS` by `../settings.ts`, whose header says how to add a setting.
 *
 * @module
 */
import { z } from "zod";
import { positiveInt, setting } from "../declaration.ts";

/** Settings of the OAuth2 authorization server and of upstream identity providers. */
export const OAUTH2_SETTINGS = {
  OAUTH2_ACCESS_TOKEN_MINUTES: setting({
    schema: positiveInt.max(60).default(10),
    doc: "Lifetime of access tokens issued to OAuth2 clients (`at+jwt`).",
    show: (c) => c.oauth2AccessTokenMinutes,
  }),
  OAUTH_PROVIDERS: setting({
    schema: z.string().optional(),
    secret: true,
    defaultDoc: "— (none)",
    doc:
      "Upstream login providers, a JSON array `{name, preset?, issuer?, client_id, client_secret or client_secret_file, scopes?}`.",
    showAs: "OAUTH_PROVIDERS",
    show: (c) => c.oauthProviders.map((p) => p.name),
  }),
};
