import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../middleware/app_env.ts";
import { requestMeta } from "../../middleware/auth.ts";
import { OAuthError } from "../../services/oauth2/errors.ts";
import type { Deps, Services } from "../deps.ts";
import { jsonResponse, route } from "../_route.ts";
import { clientCredentials, oauthHandler, readForm } from "./errors.ts";

const TokenOut = z.object({
  access_token: z.string(),
  token_type: z.literal("Bearer"),
  expires_in: z.number().int(),
  scope: z.string(),
  refresh_token: z.string().optional(),
});

const OAUTH_ERROR = jsonResponse(
  z.object({ error: z.string(), error_description: z.string().optional() }),
  "RFC 6749 §5.2 error",
);

const FORM = { content: { "application/x-www-form-urlencoded": {} } };

/** `POST /oauth2/token`, `/oauth2/introspect`, `/oauth2/revoke` (client authentication). */
export function tokenRoutes(_deps: Deps, services: Services): Hono<AppEnv> {
  const { oauth2 } = services;
  return new Hono<AppEnv>()
    .post(
      "/token",
      route({
        summary: "Token endpoint: authorization_code (+PKCE), refresh_token, client_credentials",
        tags: ["oauth2"],
        requestBody: FORM,
        responses: { 200: jsonResponse(TokenOut, "Tokens"), 400: OAUTH_ERROR, 401: OAUTH_ERROR },
        // API.md: limited like login, per client IP (here) and per client (in the service).
        policy: { rate: "login" },
      }),
      oauthHandler(async (c) => {
        const meta = requestMeta(c);
        const form = await readForm(c);
        const client = await oauth2.authenticateClient(clientCredentials(c, form), "token", meta);
        const tokens = await oauth2.token(client, form, meta);
        c.header("Pragma", "no-cache");
        return c.json(tokens);
      }),
    )
    .post(
      "/introspect",
      route({
        summary: "Token introspection (RFC 7662); confidential clients, own tokens only",
        tags: ["oauth2"],
        requestBody: FORM,
        responses: { 200: { description: "`{active, ...}`" }, 401: OAUTH_ERROR },
      }),
      oauthHandler(async (c) => {
        const form = await readForm(c);
        const client = await oauth2.authenticateClient(
          clientCredentials(c, form),
          "introspect",
          requestMeta(c),
        );
        if (form.token === undefined) throw new OAuthError("invalid_request", "token is required");
        return c.json(await oauth2.introspect(client, form.token));
      }),
    )
    .post(
      "/revoke",
      route({
        summary: "Token revocation (RFC 7009); 200 even for unknown tokens",
        tags: ["oauth2"],
        requestBody: FORM,
        responses: { 200: { description: "Revoked (or unknown)" }, 401: OAUTH_ERROR },
      }),
      oauthHandler(async (c) => {
        const meta = requestMeta(c);
        const form = await readForm(c);
        const client = await oauth2.authenticateClient(clientCredentials(c, form), "revoke", meta);
        if (form.token === undefined) throw new OAuthError("invalid_request", "token is required");
        await oauth2.revoke(client, form.token, meta);
        return c.body(null, 200);
      }),
    );
}
