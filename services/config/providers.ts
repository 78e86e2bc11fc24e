/**
 * `OAUTH_PROVIDERS`: upstream OAuth2 / OpenID Connect providers for "log in with …", as a JSON
 * array. Presets fill in Google (OIDC discovery) and GitHub (plain OAuth2); anything else is a
 * generic OIDC provider found by discovery from its `issuer`, or given explicit endpoints.
 *
 * @module
 */
import { z } from "zod";
import type { ConfigIo } from "./secrets.ts";
import type { UpstreamProviderConfig } from "./model.ts";

const Endpoint = z.url({ protocol: /^https?$/ });

const ProviderEntry = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, "must be lowercase letters, digits, - or _"),
  display_name: z.string().min(1).max(64).optional(),
  preset: z.enum(["google", "github", "oidc"]).optional(),
  issuer: Endpoint.optional(),
  authorization_endpoint: Endpoint.optional(),
  token_endpoint: Endpoint.optional(),
  userinfo_endpoint: Endpoint.optional(),
  jwks_uri: Endpoint.optional(),
  client_id: z.string().min(1).max(512),
  client_secret: z.string().min(1).max(4096).optional(),
  client_secret_file: z.string().min(1).optional(),
  scopes: z.array(z.string().regex(/^[\x21-\x7e]+$/)).max(32).optional(),
});

const PRESETS = {
  google: {
    display: "Google",
    kind: "oidc",
    issuer: "https://accounts.google.com",
    scopes: ["openid", "email", "profile"],
  },
  github: {
    display: "GitHub",
    kind: "github",
    issuer: null,
    scopes: ["read:user", "user:email"],
    endpoints: {
      authorization: "https://github.com/login/oauth/authorize",
      token: "https://github.com/login/oauth/access_token",
      userinfo: "https://api.github.com/user",
      jwks: null,
    },
  },
} as const;

/**
 * Parses `OAUTH_PROVIDERS`; each entry's secret comes from `client_secret` or the file named
 * by `client_secret_file`. Problems are pushed in the config's message style.
 */
export function parseProviders(
  raw: string | undefined,
  io: ConfigIo,
  production: boolean,
  problems: string[],
): UpstreamProviderConfig[] {
  if (raw === undefined) return [];
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    problems.push(`"OAUTH_PROVIDERS" environment variable is invalid: not JSON`);
    return [];
  }
  const parsed = z.array(ProviderEntry).max(32).safeParse(json);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(
        `"OAUTH_PROVIDERS" entry ${issue.path.join(".")} is invalid: ${issue.message}`,
      );
    }
    return [];
  }
  const out: UpstreamProviderConfig[] = [];
  for (const p of parsed.data) {
    const where = `"OAUTH_PROVIDERS" entry "${p.name}"`;
    if (out.some((o) => o.name === p.name)) problems.push(`${where} is listed twice`);
    let secret = p.client_secret;
    if (p.client_secret_file !== undefined) {
      if (secret !== undefined) problems.push(`${where} has both client_secret and _file`);
      const text = io.readTextFile(p.client_secret_file);
      if (text === null) problems.push(`${where} client_secret_file does not exist`);
      else secret = text.replace(/\r?\n$/, "");
    }
    if (secret === undefined) {
      problems.push(`${where} needs client_secret or client_secret_file`);
      continue;
    }
    const preset = p.preset === "google" || p.preset === "github" ? PRESETS[p.preset] : null;
    const explicit = p.authorization_endpoint !== undefined && p.token_endpoint !== undefined
      ? {
        authorization: p.authorization_endpoint,
        token: p.token_endpoint,
        userinfo: p.userinfo_endpoint ?? null,
        jwks: p.jwks_uri ?? null,
      }
      : null;
    const endpoints = explicit ??
      (preset !== null && "endpoints" in preset ? preset.endpoints : null);
    const issuer = p.issuer ?? preset?.issuer ?? null;
    const kind = preset?.kind ?? "oidc";
    if (kind === "oidc" && issuer === null) {
      problems.push(`${where} needs an issuer (OpenID Connect validates the ID token's iss)`);
      continue;
    }
    if (kind === "oidc" && endpoints !== null && endpoints.jwks === null) {
      problems.push(`${where} with explicit endpoints needs jwks_uri`);
      continue;
    }
    const urls = [issuer, ...Object.values(endpoints ?? {})].filter((u) => u !== null);
    if (production && urls.some((u) => !u.startsWith("https://"))) {
      problems.push(`${where} must use https URLs in production`);
    }
    out.push(Object.freeze({
      name: p.name,
      displayName: p.display_name ?? preset?.display ?? p.name,
      kind,
      issuer,
      endpoints,
      clientId: p.client_id,
      clientSecret: secret,
      scopes: p.scopes ?? [...(preset?.scopes ?? ["openid", "email", "profile"])],
    }));
  }
  return out;
}
