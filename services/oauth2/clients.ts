import type { Clock } from "../core/clock.ts";
import { randomId, randomSecret, sha256, timingSafeEqual } from "../core/crypto.ts";
import { NotFoundError, ValidationError } from "../core/errors.ts";
import { oauth2ClientKey, oauth2ClientsPrefix } from "../core/kv_keys.ts";
import { isPermission, type Permission } from "../auth/permissions.ts";

/** Grant types a client may be registered for. */
export const GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"] as const;

/** One of {@linkcode GRANT_TYPES}. */
export type GrantType = typeof GRANT_TYPES[number];

/** A registered client as stored: the secret only as its SHA-256. */
export interface ClientRecord {
  id: string;
  name: string;
  type: "public" | "confidential";
  redirect_uris: string[];
  grant_types: GrantType[];
  scopes: Permission[];
  secret_hash: string | null;
  created_at: string;
  created_by: string;
}

/** What an admin submits to register a client. */
export interface NewClient {
  name: string;
  type: "public" | "confidential";
  redirectUris: readonly string[];
  grantTypes: readonly GrantType[];
  scopes: readonly string[];
}

/** A client as listed (never a secret or its hash). */
export type ClientView = Omit<ClientRecord, "secret_hash">;

/** The client registry. */
export interface ClientStore {
  /**
   * Registers a client; a confidential one gets a secret, returned only here.
   *
   * @throws {ValidationError} for a bad redirect URI, scope or grant type combination
   */
  create(
    input: NewClient,
    createdBy: string,
  ): Promise<{ client: ClientRecord; secret: string | null }>;
  get(clientId: string): Promise<ClientRecord | null>;
  list(): Promise<ClientRecord[]>;
  /** @throws {NotFoundError} when no such client exists */
  delete(clientId: string): Promise<ClientRecord>;
  /**
   * Checks a presented secret in constant time; unknown clients cost the same.
   * Returns the client when it is confidential and the secret matches.
   */
  verifySecret(clientId: string, secret: string): Promise<ClientRecord | null>;
}

/** The client-facing view of a record. */
export function toClientView(client: ClientRecord): ClientView {
  const { secret_hash: _hidden, ...view } = client;
  return view;
}

/**
 * Redirect URI rules (RFC 6749 §3.1.2, RFC 8252 §7.3, RFC 9700 §4.1): absolute `https`, or
 * `http` on a loopback IP literal; no fragment, no userinfo, no wildcard. Returns the problem.
 */
export function redirectUriProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    if (error instanceof TypeError) return "is not an absolute URL";
    throw error;
  }
  if (value.includes("#")) return "must not contain a fragment";
  if (value.includes("*")) return "must not contain a wildcard";
  if (url.username !== "" || url.password !== "") return "must not contain credentials";
  if (url.protocol === "https:") return null;
  if (url.protocol === "http:" && isLoopback(url.hostname)) return null;
  return "must use https (or http on 127.0.0.1 / [::1])";
}

function isLoopback(hostname: string): boolean {
  // RFC 8252 §8.3: loopback IP literals, not "localhost" (which DNS could point elsewhere).
  return hostname === "127.0.0.1" || hostname === "[::1]";
}

/**
 * Exact redirect URI matching (RFC 9700 §4.1.3), except that a loopback URI may use any port
 * (RFC 8252 §7.3): the scheme, host, path and query must still be identical.
 */
export function matchRedirectUri(registered: readonly string[], presented: string): boolean {
  if (registered.includes(presented)) return true;
  let url: URL;
  try {
    url = new URL(presented);
  } catch (error) {
    if (error instanceof TypeError) return false;
    throw error;
  }
  if (url.protocol !== "http:" || !isLoopback(url.hostname)) return false;
  return registered.some((r) => {
    const reg = new URL(r);
    if (reg.protocol !== "http:" || !isLoopback(reg.hostname)) return false;
    reg.port = url.port;
    // Compare the whole serialisation, so nothing but the port may differ.
    return reg.href === url.href && withoutPort(r) === withoutPort(presented);
  });
}

function withoutPort(value: string): string {
  return value.replace(/^(http:\/\/(?:127\.0\.0\.1|\[::1\]))(?::\d+)?/, "$1");
}

/** Dependencies of {@linkcode createClientStore}. */
export interface ClientStoreDeps {
  kv: Deno.Kv;
  clock: Clock;
}

/** A hash no secret has, compared against for unknown clients (same work either way). */
const DUMMY_HASH = sha256("bulwark-oauth2-unknown-client");

/** Creates the client registry. */
export function createClientStore(deps: ClientStoreDeps): ClientStore {
  const { kv, clock } = deps;

  function validate(input: NewClient): void {
    const errors: { path: string; message: string }[] = [];
    input.redirectUris.forEach((uri, i) => {
      const problem = redirectUriProblem(uri);
      if (problem !== null) errors.push({ path: `redirect_uris.${i}`, message: `URI ${problem}` });
    });
    input.scopes.forEach((s, i) => {
      if (!isPermission(s)) errors.push({ path: `scopes.${i}`, message: `Unknown scope "${s}"` });
    });
    const grants = new Set(input.grantTypes);
    if (grants.has("authorization_code") && input.redirectUris.length === 0) {
      errors.push({ path: "redirect_uris", message: "authorization_code needs a redirect URI" });
    }
    if (grants.has("refresh_token") && !grants.has("authorization_code")) {
      errors.push({ path: "grant_types", message: "refresh_token needs authorization_code" });
    }
    if (grants.has("client_credentials") && input.type === "public") {
      // RFC 6749 §4.4: only a client that can keep a secret may act on its own behalf.
      errors.push({
        path: "grant_types",
        message: "client_credentials needs a confidential client",
      });
    }
    if (errors.length > 0) throw new ValidationError("Request validation failed", { errors });
  }

  return {
    async create(input, createdBy) {
      validate(input);
      const secret = input.type === "confidential" ? randomSecret() : null;
      const client: ClientRecord = {
        id: randomId(),
        name: input.name,
        type: input.type,
        redirect_uris: [...new Set(input.redirectUris)],
        grant_types: [...new Set(input.grantTypes)],
        scopes: [...new Set(input.scopes)].filter(isPermission),
        secret_hash: secret === null ? null : sha256(secret),
        created_at: clock.now().toISOString(),
        created_by: createdBy,
      };
      await kv.set(oauth2ClientKey(client.id), client);
      return { client, secret };
    },
    async get(clientId) {
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(clientId)) return null;
      return (await kv.get<ClientRecord>(oauth2ClientKey(clientId))).value;
    },
    async list() {
      const out: ClientRecord[] = [];
      for await (const e of kv.list<ClientRecord>({ prefix: oauth2ClientsPrefix() })) {
        out.push(e.value);
      }
      return out.sort((a, b) => a.created_at.localeCompare(b.created_at));
    },
    async delete(clientId) {
      const entry = await kv.get<ClientRecord>(oauth2ClientKey(clientId));
      if (entry.value === null) throw new NotFoundError("No such client");
      await kv.delete(oauth2ClientKey(clientId));
      return entry.value;
    },
    async verifySecret(clientId, secret) {
      const client = await this.get(clientId);
      const presented = sha256(secret);
      const ok = timingSafeEqual(presented, client?.secret_hash ?? DUMMY_HASH);
      return ok && client !== null && client.secret_hash !== null ? client : null;
    },
  };
}
