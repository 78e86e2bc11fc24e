/**
 * Bulwark's OAuth2 authorization server (RFC 6749, 7636, 7009, 7662, 8414, 9068, 9207, with
 * RFC 9700's best current practice): one service wiring the client registry, the browser
 * leg of the code flow, the token endpoint and the consent list.
 *
 * @module
 */
import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { Clock } from "../core/clock.ts";
import type { SecretKey } from "../config/config.ts";
import { NotFoundError } from "../core/errors.ts";
import type { UserRecord, UserService } from "../identity/users.ts";
import type { AuthService } from "../auth/auth.ts";
import { PERMISSIONS } from "../auth/permissions.ts";
import type { RatePolicy } from "../limits/rate_policy.ts";
import { createOAuthAccessTokens } from "./access_tokens.ts";
import { type AuthorizeFlow, createAuthorizeFlow } from "./authorize.ts";
import {
  type ClientRecord,
  type ClientStore,
  createClientStore,
  GRANT_TYPES,
  type NewClient,
} from "./clients.ts";
import { createOAuth2Store } from "./store.ts";
import { createTokenEndpoint, type TokenEndpoint } from "./token_endpoint.ts";

/** A consent as its user sees it. */
export interface ConsentView {
  client_id: string;
  client_name: string | null;
  scopes: string[];
  granted_at: string;
}

/** The authorization server. */
export interface OAuth2Service extends AuthorizeFlow, TokenEndpoint {
  readonly clients: ClientStore;
  /**
   * Registers a client (admin); a confidential client's secret is returned only here.
   *
   * @throws {ValidationError} for bad redirect URIs, scopes or grant types
   */
  createClient(
    input: NewClient,
    adminId: string,
    meta: RequestMeta,
  ): Promise<{ client: ClientRecord; secret: string | null }>;
  /**
   * Deletes a client and revokes every grant and consent given to it.
   *
   * @throws {NotFoundError} when there is no such client
   */
  deleteClient(clientId: string, adminId: string, meta: RequestMeta): Promise<void>;
  /**
   * Revokes every grant (so every token issued from one) and consent given to a
   * client, keeping its registration (incident response: `bulwark oauth revoke`).
   * Returns how many grants ended.
   *
   * @throws {NotFoundError} when there is no such client
   */
  revokeClient(clientId: string, meta: RequestMeta): Promise<number>;
  /** The user's remembered consents. */
  listConsents(userId: string): Promise<ConsentView[]>;
  /**
   * Forgets the user's consent to a client and revokes that client's tokens for the user.
   *
   * @throws {NotFoundError} when there was neither a consent nor a grant
   */
  revokeConsent(userId: string, clientId: string, meta: RequestMeta): Promise<void>;
  /**
   * Revokes every grant, token and consent of a user (password reset, logout-all, admin
   * disable: "revoke every credential"). Returns how many grants ended.
   */
  revokeAllForUser(userId: string, meta?: RequestMeta): Promise<number>;
  /** The RFC 8414 metadata document. */
  metadata(): Record<string, unknown>;
}

/** Dependencies of {@linkcode createOAuth2Service}. */
export interface OAuth2Deps {
  kv: Deno.Kv;
  clock: Clock;
  audit: AuditService;
  auth: AuthService;
  users: UserService;
  rates: RatePolicy;
  /** The access keyring; OAuth2 tokens use keys derived from it. */
  accessKeys: readonly SecretKey[];
  /** `PUBLIC_URL`: the issuer, and the audience of access tokens. */
  issuer: string;
  /** OAuth2 access token lifetime. @default 600 (RFC 9700 §4.10: short-lived) */
  accessTtlSeconds?: number;
  /** Grant (refresh chain) lifetime. */
  grantTtlSeconds: number;
  /**
   * Email-verification hook: throw (`EmailUnverifiedError`) for an account that may not grant
   * consent yet. @default allows every account
   */
  assertMayGrantConsent?: (user: UserRecord) => void | Promise<void>;
}

/** Creates the authorization server. */
export function createOAuth2Service(deps: OAuth2Deps): OAuth2Service {
  const { kv, clock, audit, issuer } = deps;
  const accessTtlSeconds = deps.accessTtlSeconds ?? 600;
  const clients = createClientStore({ kv, clock });
  const store = createOAuth2Store({ kv, clock, spentCodeTtlMs: deps.grantTtlSeconds * 1000 });
  const tokens = createOAuthAccessTokens({
    keys: deps.accessKeys,
    issuer,
    audience: issuer,
    ttlSeconds: accessTtlSeconds,
  });
  const flow = createAuthorizeFlow({
    clock,
    audit,
    auth: deps.auth,
    users: deps.users,
    clients,
    store,
    issuer,
    codeTtlSeconds: 60,
    requestTtlSeconds: 600,
    assertMayGrantConsent: deps.assertMayGrantConsent ?? (() => {}),
  });
  const endpoint = createTokenEndpoint({
    clock,
    audit,
    users: deps.users,
    clients,
    store,
    tokens,
    rates: deps.rates,
    accessTtlSeconds,
    grantTtlSeconds: deps.grantTtlSeconds,
  });

  /** Ends every grant and consent given to a client; returns how many grants ended. */
  async function revokeGrantsOfClient(
    clientId: string,
    reason: string,
    meta: RequestMeta,
  ): Promise<number> {
    let count = 0;
    for (const grant of await store.grantsOfClient(clientId)) {
      if (await endpoint.revokeGrant(grant.id, reason, meta)) count++;
    }
    for (const userId of await store.consentUsersOfClient(clientId)) {
      await store.deleteConsent(userId, clientId);
    }
    return count;
  }

  return {
    ...flow,
    ...endpoint,
    clients,

    async createClient(input, adminId, meta) {
      const created = await clients.create(input, adminId);
      await audit.record({
        type: "oauth2.client_created",
        outcome: "success",
        userId: adminId,
        meta,
        details: {
          client_id: created.client.id,
          type: input.type,
          grant_types: created.client.grant_types,
          scopes: created.client.scopes,
        },
      });
      return created;
    },

    async deleteClient(clientId, adminId, meta) {
      const client = await clients.get(clientId);
      if (client === null) throw new NotFoundError("No such client");
      await clients.delete(clientId);
      // Tokens without a grant (client_credentials) die with the client record itself.
      await revokeGrantsOfClient(clientId, "client_deleted", meta);
      await audit.record({
        type: "oauth2.client_deleted",
        outcome: "success",
        userId: adminId,
        meta,
        details: { client_id: clientId },
      });
    },

    async revokeClient(clientId, meta) {
      if (await clients.get(clientId) === null) throw new NotFoundError("No such client");
      return await revokeGrantsOfClient(clientId, "operator", meta);
    },

    async listConsents(userId) {
      const consents = await store.consentsOfUser(userId);
      const out: ConsentView[] = [];
      for (const c of consents) {
        const client = await clients.get(c.client_id);
        out.push({
          client_id: c.client_id,
          client_name: client?.name ?? null,
          scopes: c.scopes,
          granted_at: c.granted_at,
        });
      }
      return out;
    },

    async revokeConsent(userId, clientId, meta) {
      const had = await store.deleteConsent(userId, clientId);
      let grants = 0;
      for (const grant of await store.grantsOfUser(userId)) {
        if (grant.client_id === clientId) {
          if (await endpoint.revokeGrant(grant.id, "consent_revoked", meta)) grants++;
        }
      }
      if (!had && grants === 0) throw new NotFoundError("No consent for this client");
      await audit.record({
        type: "oauth2.consent_revoked",
        outcome: "success",
        userId,
        meta,
        details: { client_id: clientId, grants_revoked: grants },
      });
    },

    async revokeAllForUser(userId, meta) {
      let count = 0;
      for (const grant of await store.grantsOfUser(userId)) {
        if (await endpoint.revokeGrant(grant.id, "revoke_all", meta)) count++;
      }
      const consents = await store.consentsOfUser(userId);
      for (const c of consents) await store.deleteConsent(userId, c.client_id);
      await audit.record({
        type: "oauth2.grants_revoked",
        outcome: "success",
        userId,
        meta,
        details: { grants_revoked: count, consents_revoked: consents.length },
      });
      return count;
    },

    metadata() {
      return {
        issuer,
        authorization_endpoint: `${issuer}/oauth2/authorize`,
        token_endpoint: `${issuer}/oauth2/token`,
        introspection_endpoint: `${issuer}/oauth2/introspect`,
        revocation_endpoint: `${issuer}/oauth2/revoke`,
        scopes_supported: [...PERMISSIONS],
        response_types_supported: ["code"],
        response_modes_supported: ["query"],
        grant_types_supported: [...GRANT_TYPES],
        code_challenge_methods_supported: ["S256"],
        token_endpoint_auth_methods_supported: [
          "client_secret_basic",
          "client_secret_post",
          "none",
        ],
        introspection_endpoint_auth_methods_supported: [
          "client_secret_basic",
          "client_secret_post",
        ],
        revocation_endpoint_auth_methods_supported: [
          "client_secret_basic",
          "client_secret_post",
          "none",
        ],
        authorization_response_iss_parameter_supported: true,
      };
    },
  };
}
