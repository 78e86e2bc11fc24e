import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { Clock } from "../core/clock.ts";
import { randomSecret, sha256, timingSafeEqual } from "../core/crypto.ts";
import { TokenExpiredError, TokenInvalidError, TokenRevokedError } from "../core/errors.ts";
import { oauth2ClientKey, userKey } from "../core/kv_keys.ts";
import type { UserRecord, UserService } from "../identity/users.ts";
import { permissionsOf } from "../auth/permissions.ts";
import type { OAuthPrincipal } from "../auth/principal.ts";
import type { RatePolicy } from "../limits/rate_policy.ts";
import type { OAuthAccessTokens } from "./access_tokens.ts";
import type { ClientRecord, ClientStore } from "./clients.ts";
import { invalidClient, OAuthError } from "./errors.ts";
import { grantableScopes, parseScope } from "./scopes.ts";
import type { GrantRecord, OAuth2Store } from "./store.ts";

/** Client credentials as presented (RFC 6749 §2.3.1): the Basic header or the form. */
export interface ClientCredentials {
  basic: { id: string; secret: string } | null;
  formId: string | undefined;
  formSecret: string | undefined;
}

/** Who may use an endpoint. */
export type ClientAuthMode = "token" | "introspect" | "revoke";

/** RFC 6749 §5.1 successful token response. */
export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  scope: string;
  refresh_token?: string;
}

/** `/oauth2/token`, `/oauth2/introspect`, `/oauth2/revoke`, and access tokens on the API. */
export interface TokenEndpoint {
  /**
   * Authenticates the calling client (constant time; failures audited and rate-limited).
   *
   * @throws {OAuthError} `invalid_client` / `invalid_request`
   * @throws {RateLimitedError} when the client's bucket is empty
   */
  authenticateClient(
    credentials: ClientCredentials,
    mode: ClientAuthMode,
    meta: RequestMeta,
  ): Promise<ClientRecord>;
  /** @throws {OAuthError} with the RFC 6749 §5.2 code */
  token(
    client: ClientRecord,
    form: Readonly<Record<string, string>>,
    meta: RequestMeta,
  ): Promise<TokenResponse>;
  /** RFC 7662: `{active:false}` for anything not live and issued to this client. */
  introspect(client: ClientRecord, token: string): Promise<Record<string, unknown>>;
  /** RFC 7009: revokes an access or refresh token of this client; silent for anything else. */
  revoke(client: ClientRecord, token: string, meta: RequestMeta): Promise<void>;
  /** True when a bearer token is an `at+jwt` (so the OAuth2 path judges it). */
  isOAuthToken(token: string): boolean;
  /**
   * An OAuth2 access token used on Bulwark's own API.
   *
   * @throws {TokenInvalidError} | {TokenExpiredError} | {TokenRevokedError}
   */
  authenticateAccessToken(token: string): Promise<OAuthPrincipal>;
  /** Deletes a grant, so its refresh token and access tokens stop working at once. */
  revokeGrant(grantId: string, reason: string, meta: RequestMeta | undefined): Promise<boolean>;
}

/** Dependencies of {@linkcode createTokenEndpoint}. */
export interface TokenEndpointDeps {
  clock: Clock;
  audit: AuditService;
  users: UserService;
  clients: ClientStore;
  store: OAuth2Store;
  tokens: OAuthAccessTokens;
  rates: RatePolicy;
  /** Access token lifetime (RFC 9700 §4.10: short). */
  accessTtlSeconds: number;
  /** Grant (refresh token chain) lifetime. */
  grantTtlSeconds: number;
}

/** RFC 7636 §4.1: 43-128 unreserved characters. */
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;
const CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Creates the token endpoint logic. */
export function createTokenEndpoint(deps: TokenEndpointDeps): TokenEndpoint {
  const { clock, audit, users, clients, store, tokens } = deps;

  async function issueAccess(
    subject: string,
    clientId: string,
    scopes: string[],
    gid: string | null,
  ) {
    const signed = await tokens.sign(
      { subject, clientId, scope: scopes, grantId: gid },
      clock.now(),
    );
    return {
      access_token: signed.token,
      token_type: "Bearer" as const,
      expires_in: deps.accessTtlSeconds,
      scope: scopes.join(" "),
    };
  }

  async function revokeGrant(grantId: string, reason: string, meta: RequestMeta | undefined) {
    const grant = await store.deleteGrant(grantId);
    if (grant === null) return false;
    await audit.record({
      type: "oauth2.token_revoked",
      outcome: "success",
      userId: grant.user_id,
      meta,
      details: { client_id: grant.client_id, grant_id: grant.id, reason },
    });
    return true;
  }

  function usable(user: UserRecord | null): user is UserRecord {
    return user !== null && !user.disabled;
  }

  async function authorizationCode(
    client: ClientRecord,
    form: Readonly<Record<string, string>>,
    meta: RequestMeta,
  ): Promise<TokenResponse> {
    const code = form.code ?? "";
    if (code === "" || form.redirect_uri === undefined) {
      throw new OAuthError("invalid_request", "code and redirect_uri are required");
    }
    const claim = await store.claimCode(sha256(code));
    if (claim.kind === "replayed") {
      // RFC 6749 §4.1.2: a code used twice revokes every token issued from it.
      const revoked = await revokeGrant(claim.grantId, "code_replayed", meta);
      await audit.record({
        type: "oauth2.code_replayed",
        outcome: "failure",
        meta,
        details: { client_id: client.id, grant_revoked: revoked },
      });
      throw new OAuthError("invalid_grant", "The code was already used");
    }
    if (claim.kind === "unknown") throw new OAuthError("invalid_grant", "Unknown or expired code");
    const c = claim.code;
    const now = clock.now();
    if (
      new Date(c.expires_at) <= now || c.client_id !== client.id ||
      c.redirect_uri !== form.redirect_uri
    ) {
      throw new OAuthError(
        "invalid_grant",
        "The code is expired or was issued for another request",
      );
    }
    const verifier = form.code_verifier;
    if (c.code_challenge === null) {
      // RFC 9700 §2.1.1: a verifier without a challenge is a downgrade attempt.
      if (verifier !== undefined) {
        throw new OAuthError("invalid_grant", "No PKCE challenge was sent");
      }
    } else if (
      verifier === undefined || !VERIFIER.test(verifier) ||
      !timingSafeEqual(sha256(verifier), c.code_challenge)
    ) {
      throw new OAuthError("invalid_grant", "PKCE verification failed");
    }
    const user = await users.getUser(c.user_id);
    // A password reset or change since the sign-in that made this code (recovery) voids it.
    if (
      !usable(user) ||
      (c.password_version !== undefined && c.password_version !== user.password_changed_at)
    ) {
      throw new OAuthError("invalid_grant", "The account is unavailable");
    }
    // The consent the code was issued under must still stand: withdrawing it (or logging
    // out everywhere) in the code's lifetime voids the code, and the grant below is
    // committed only while the consent is unchanged.
    const consent = await store.getConsentEntry(user.id, client.id);
    if (consent.value === null || !c.scopes.every((s) => consent.value.scopes.includes(s))) {
      throw new OAuthError("invalid_grant", "The consent for this code was withdrawn");
    }
    const scopes = grantableScopes(c.scopes, client.scopes, user.role);
    const refresh = client.grant_types.includes("refresh_token") ? randomSecret() : null;
    const grant: GrantRecord = {
      id: c.grant_id,
      user_id: user.id,
      client_id: client.id,
      scopes,
      refresh_hash: refresh === null ? null : sha256(refresh),
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + deps.grantTtlSeconds * 1000).toISOString(),
    };
    const created = await store.createGrant(grant, {
      grant_id: grant.id,
      client_id: client.id,
      expires_at: grant.expires_at,
    }, consent);
    if (!created) throw new OAuthError("invalid_grant", "The consent changed; authorize again");
    const details = { client_id: client.id, grant_id: grant.id, scopes };
    await audit.record({
      type: "oauth2.code_redeemed",
      outcome: "success",
      userId: user.id,
      meta,
      details,
    });
    await audit.record({
      type: "oauth2.token_issued",
      outcome: "success",
      userId: user.id,
      meta,
      details: { ...details, grant_type: "authorization_code" },
    });
    const access = await issueAccess(user.id, client.id, scopes, grant.id);
    return refresh === null ? access : { ...access, refresh_token: refresh };
  }

  async function refreshToken(
    client: ClientRecord,
    form: Readonly<Record<string, string>>,
    meta: RequestMeta,
  ): Promise<TokenResponse> {
    const presented = form.refresh_token ?? "";
    if (presented === "") throw new OAuthError("invalid_request", "refresh_token is required");
    const hash = sha256(presented);
    const record = await store.getRefresh(hash);
    if (record === null || record.client_id !== client.id) {
      throw new OAuthError("invalid_grant", "Unknown refresh token");
    }
    const entry = await store.getGrant(record.grant_id);
    const grant = entry.value;
    if (grant === null || entry.versionstamp === null) {
      throw new OAuthError("invalid_grant", "The grant was revoked");
    }
    if (grant.refresh_hash === null || !timingSafeEqual(grant.refresh_hash, hash)) {
      // A spent refresh token came back: someone holds a copy (RFC 9700 §4.14.2).
      await revokeGrant(grant.id, "refresh_reuse", meta);
      await audit.record({
        type: "oauth2.refresh_reuse_detected",
        outcome: "failure",
        userId: grant.user_id,
        meta,
        details: { client_id: client.id, grant_id: grant.id },
      });
      throw new OAuthError(
        "invalid_grant",
        "The refresh token was already used; the grant is revoked",
      );
    }
    const now = clock.now();
    if (new Date(grant.expires_at) <= now) {
      throw new OAuthError("invalid_grant", "The grant has expired");
    }
    const user = await users.getUser(grant.user_id);
    if (!usable(user)) {
      await revokeGrant(grant.id, "account_unavailable", meta);
      throw new OAuthError("invalid_grant", "The account is unavailable");
    }
    const requested = parseScope(form.scope);
    if (requested !== null && requested.some((s) => !grant.scopes.includes(s))) {
      throw new OAuthError("invalid_scope", "A refresh may only narrow the granted scopes");
    }
    const next = randomSecret();
    const rotated = await store.rotateRefresh(entry as Deno.KvEntry<GrantRecord>, sha256(next), {
      grant_id: grant.id,
      client_id: client.id,
      expires_at: grant.expires_at,
    });
    if (!rotated) {
      // Spent twice at once: a copy exists, so the grant ends, as for a later replay.
      await revokeGrant(grant.id, "refresh_reuse", meta);
      await audit.record({
        type: "oauth2.refresh_reuse_detected",
        outcome: "failure",
        userId: grant.user_id,
        meta,
        details: { client_id: client.id, grant_id: grant.id, concurrent: true },
      });
      throw new OAuthError(
        "invalid_grant",
        "The refresh token was already used; the grant is revoked",
      );
    }
    const scopes = grantableScopes(requested ?? grant.scopes, client.scopes, user.role);
    await audit.record({
      type: "oauth2.token_refreshed",
      outcome: "success",
      userId: user.id,
      meta,
      details: { client_id: client.id, grant_id: grant.id },
    });
    return { ...await issueAccess(user.id, client.id, scopes, grant.id), refresh_token: next };
  }

  async function clientCredentials(
    client: ClientRecord,
    form: Readonly<Record<string, string>>,
    meta: RequestMeta,
  ): Promise<TokenResponse> {
    const requested = parseScope(form.scope);
    if (requested !== null && requested.some((s) => !client.scopes.includes(s as never))) {
      throw new OAuthError("invalid_scope", "A requested scope is not allowed for this client");
    }
    const scopes = grantableScopes(requested, client.scopes, null);
    await audit.record({
      type: "oauth2.token_issued",
      outcome: "success",
      meta,
      details: { client_id: client.id, grant_type: "client_credentials", scopes },
    });
    return await issueAccess(client.id, client.id, scopes, null);
  }

  async function failAuth(
    clientId: string,
    reason: string,
    mode: ClientAuthMode,
    meta: RequestMeta,
  ): Promise<never> {
    await audit.record({
      type: "oauth2.client_auth_failed",
      outcome: "failure",
      meta,
      details: { client_id: clientId.slice(0, 64), reason, endpoint: mode },
    });
    // Failures drain the client's bucket on every endpoint, so guessing is bounded per client.
    if (mode !== "token" && CLIENT_ID.test(clientId)) {
      await deps.rates.checkAccount("oauth2_client", clientId, meta);
    }
    throw invalidClient();
  }

  /** Live claims of an access token issued to `clientId` (any client when null), else null. */
  async function liveAccessToken(token: string) {
    const claims = await tokens.verify(token, clock.now());
    if (claims === null || claims === "expired") {
      return { claims: null, expired: claims === "expired" } as const;
    }
    const check = await store.checkToken<UserRecord, ClientRecord>(claims.jti, claims.gid, [
      userKey(claims.sub),
      oauth2ClientKey(claims.client_id),
    ]);
    const live = !check.revoked && check.b !== null &&
      (claims.gid === null
        ? claims.sub === claims.client_id
        : check.grant !== null && check.grant.user_id === claims.sub &&
          check.grant.client_id === claims.client_id && usable(check.a));
    return {
      claims: live ? claims : null,
      expired: false,
      user: check.a,
      grant: check.grant,
    } as const;
  }

  return {
    async authenticateClient(credentials, mode, meta) {
      const { basic, formId, formSecret } = credentials;
      if (
        basic !== null && (formId !== undefined || formSecret !== undefined) && formId !== basic.id
      ) {
        throw new OAuthError("invalid_request", "Use one client authentication method");
      }
      if (basic !== null && formSecret !== undefined) {
        throw new OAuthError("invalid_request", "Use one client authentication method");
      }
      const clientId = basic?.id ?? formId ?? "";
      const secret = basic?.secret ?? formSecret;
      if (clientId === "" || !CLIENT_ID.test(clientId)) {
        return await failAuth(clientId, "unknown_client", mode, meta);
      }
      // API.md: the token endpoint is limited per client as well as per IP, like login.
      if (mode === "token") await deps.rates.checkAccount("oauth2_client", clientId, meta);
      if (secret !== undefined) {
        const client = await clients.verifySecret(clientId, secret);
        if (client === null) return await failAuth(clientId, "bad_secret", mode, meta);
        return client;
      }
      const client = await clients.get(clientId);
      // A public client has no secret; it may use the code flow and revoke its own tokens.
      if (client === null || client.type !== "public" || mode === "introspect") {
        return await failAuth(
          clientId,
          client === null ? "unknown_client" : "secret_required",
          mode,
          meta,
        );
      }
      return client;
    },

    async token(client, form, meta) {
      const grantType = form.grant_type;
      if (grantType === undefined) {
        throw new OAuthError("invalid_request", "grant_type is required");
      }
      if (
        grantType !== "authorization_code" && grantType !== "refresh_token" &&
        grantType !== "client_credentials"
      ) {
        throw new OAuthError(
          "unsupported_grant_type",
          "Supported: authorization_code, refresh_token, client_credentials",
        );
      }
      if (!client.grant_types.includes(grantType)) {
        throw new OAuthError("unauthorized_client", `This client may not use ${grantType}`);
      }
      if (grantType === "authorization_code") return await authorizationCode(client, form, meta);
      if (grantType === "refresh_token") return await refreshToken(client, form, meta);
      if (client.type !== "confidential") {
        throw new OAuthError("unauthorized_client", "Public clients cannot use client_credentials");
      }
      return await clientCredentials(client, form, meta);
    },

    async introspect(client, token) {
      const { claims } = await liveAccessToken(token);
      if (claims !== null) {
        if (claims.client_id !== client.id) return { active: false };
        return {
          active: true,
          token_type: "Bearer",
          scope: claims.scope.join(" "),
          client_id: claims.client_id,
          sub: claims.sub,
          aud: claims.aud,
          iss: claims.iss,
          exp: claims.exp,
          iat: claims.iat,
          jti: claims.jti,
        };
      }
      const hash = sha256(token);
      const record = await store.getRefresh(hash);
      if (record === null || record.client_id !== client.id) return { active: false };
      const grant = (await store.getGrant(record.grant_id)).value;
      if (
        grant === null || grant.refresh_hash !== hash || new Date(grant.expires_at) <= clock.now()
      ) {
        return { active: false };
      }
      return {
        active: true,
        token_type: "refresh_token",
        scope: grant.scopes.join(" "),
        client_id: grant.client_id,
        sub: grant.user_id,
        exp: Math.floor(new Date(grant.expires_at).getTime() / 1000),
      };
    },

    async revoke(client, token, meta) {
      const claims = await tokens.verify(token, clock.now());
      if (claims !== null && claims !== "expired") {
        if (claims.client_id !== client.id) return;
        await store.revokeJti(claims.jti, new Date(claims.exp * 1000 + 60_000));
        await audit.record({
          type: "oauth2.token_revoked",
          outcome: "success",
          meta,
          details: { client_id: client.id, token_type: "access_token", grant_id: claims.gid },
        });
        return;
      }
      const record = await store.getRefresh(sha256(token));
      // RFC 7009 §2.1: revoking a refresh token also ends the access tokens of its grant.
      if (record !== null && record.client_id === client.id) {
        await revokeGrant(record.grant_id, "revoked_by_client", meta);
      }
    },

    isOAuthToken(token) {
      return tokens.looksLikeOAuthToken(token);
    },

    async authenticateAccessToken(token) {
      const found = await liveAccessToken(token);
      if (found.expired) throw new TokenExpiredError("Token has expired");
      const claims = found.claims;
      if (claims === null) {
        throw found.user === undefined
          ? new TokenInvalidError("Token is invalid")
          : new TokenRevokedError("The token has been revoked");
      }
      if (claims.gid === null || found.grant === null || !usable(found.user ?? null)) {
        // client_credentials tokens act for a client, not a user: nothing of Bulwark's API is theirs.
        throw new TokenInvalidError("This token does not act for a user");
      }
      const user = found.user!;
      const allowed = permissionsOf(user.role);
      return {
        kind: "oauth2",
        userId: user.id,
        clientId: claims.client_id,
        grantId: claims.gid,
        jti: claims.jti,
        role: user.role,
        scopes: new Set(claims.scope.filter((s) => allowed.has(s as never))),
        passwordExpired: false,
        expiresAt: new Date(claims.exp * 1000),
        user,
      };
    },

    revokeGrant,
  };
}
