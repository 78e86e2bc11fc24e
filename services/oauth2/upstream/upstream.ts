/**
 * "Log in with …": Bulwark as an OAuth2 / OpenID Connect client of upstream providers. Every
 * request carries state, PKCE (S256) and, for OIDC, a nonce; the ID token is verified with
 * jose against the provider's JWKS (signature, issuer, audience, expiry, nonce). An account is
 * linked only by an earlier link or a verified email; otherwise one is created.
 *
 * @module
 */
import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify } from "jose";
import type { AuditService, RequestMeta } from "../../core/audit.ts";
import type { Clock } from "../../core/clock.ts";
import type { UpstreamProviderConfig } from "../../config/config.ts";
import { randomSecret, sha256, timingSafeEqual } from "../../core/crypto.ts";
import {
  ConflictError,
  ForbiddenError,
  InvalidCredentialsError,
  NotFoundError,
} from "../../core/errors.ts";
import { expireInUntil } from "../../core/kv.ts";
import { upstreamLinkKey, upstreamStateKey } from "../../core/kv_keys.ts";
import { normalizeEmail, type UserRecord, type UserService } from "../../identity/users.ts";
import { isEmailVerified } from "../../identity/email_verification.ts";
import type { AuthService } from "../../auth/auth.ts";

/** A provider as `GET /auth/providers` lists it. */
export interface ProviderView {
  name: string;
  display_name: string;
}

/** Upstream identity providers. */
export interface UpstreamService {
  list(): ProviderView[];
  /**
   * Starts a login: the provider URL to send the browser to, and the secret for the cookie
   * binding the login to this browser (login CSRF).
   *
   * @throws {NotFoundError} for an unknown provider
   */
  begin(
    name: string,
    redirectTo: string | null,
  ): Promise<{ location: string; browserSecret: string }>;
  /**
   * Completes a login from the provider's redirect; returns the Bulwark account.
   *
   * @throws {NotFoundError} for an unknown provider
   * @throws {InvalidCredentialsError} for a bad state, a refused code or an invalid ID token
   * @throws {ForbiddenError} when no verified email allows linking or creating an account
   */
  complete(
    name: string,
    params: Readonly<Record<string, string>>,
    browserSecret: string | undefined,
    meta: RequestMeta,
  ): Promise<{ user: UserRecord; redirectTo: string | null }>;
}

/** Dependencies of {@linkcode createUpstreamService}. */
export interface UpstreamDeps {
  kv: Deno.Kv;
  clock: Clock;
  audit: AuditService;
  auth: AuthService;
  users: UserService;
  providers: readonly UpstreamProviderConfig[];
  publicUrl: string;
  fetch: typeof globalThis.fetch;
}

interface Endpoints {
  authorization: string;
  token: string;
  userinfo: string | null;
  jwks: string | null;
}

interface StateRecord {
  provider: string;
  verifier: string;
  nonce: string;
  redirect_to: string | null;
  browser_hash: string;
  expires_at: string;
}

interface Identity {
  subject: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
}

/** A login has ten minutes at the provider. */
const STATE_TTL_MS = 10 * 60_000;
/** Asymmetric algorithms only: an HS256 ID token would be signed with our client secret. */
const ID_TOKEN_ALGS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "EdDSA",
];
/** A hash no account has: upstream-only accounts cannot log in with a password until they set one. */
const NO_PASSWORD = "!upstream-only";

/** Creates the upstream-provider client. */
export function createUpstreamService(deps: UpstreamDeps): UpstreamService {
  const { kv, clock, audit, users } = deps;
  const byName = new Map(deps.providers.map((p) => [p.name, p]));
  const discovered = new Map<string, Promise<Endpoints>>();
  const jwks = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
  const failed = () => new InvalidCredentialsError("Login with the provider failed");

  function provider(name: string): UpstreamProviderConfig {
    const p = byName.get(name);
    if (p === undefined) throw new NotFoundError("No such provider");
    return p;
  }

  function callbackUrl(p: UpstreamProviderConfig): string {
    return `${deps.publicUrl}/auth/providers/${p.name}/callback`;
  }

  /**
   * A provider's JSON answer and whether it was a success, with a 10 s bound; an unreachable
   * provider or a non-JSON answer is a failed login, not our fault (no 500).
   */
  async function fetchJson(
    url: string,
    init: RequestInit,
  ): Promise<{ ok: boolean; body: unknown }> {
    const headers = new Headers(init.headers);
    headers.set("accept", "application/json");
    try {
      const res = await deps.fetch(url, {
        ...init,
        headers,
        redirect: "error",
        signal: AbortSignal.timeout(10_000),
      });
      return { ok: res.ok, body: await res.json() };
    } catch (error) {
      if (
        error instanceof TypeError || error instanceof SyntaxError || error instanceof DOMException
      ) {
        throw new InvalidCredentialsError("The provider did not answer properly", { cause: error });
      }
      throw error;
    }
  }

  async function getJson(url: string, init: RequestInit = {}): Promise<Record<string, unknown>> {
    const { ok, body } = await fetchJson(url, init);
    if (!ok || typeof body !== "object" || body === null || Array.isArray(body)) {
      throw failed();
    }
    return body as Record<string, unknown>;
  }

  function endpoints(p: UpstreamProviderConfig): Promise<Endpoints> {
    if (p.endpoints !== null) return Promise.resolve(p.endpoints);
    let found = discovered.get(p.name);
    if (found === undefined) {
      found = (async () => {
        const doc = await getJson(`${p.issuer}/.well-known/openid-configuration`);
        // OIDC Discovery §4.3: the document must name the issuer we asked.
        if (doc.issuer !== p.issuer) throw failed();
        const str = (v: unknown) => (typeof v === "string" ? v : null);
        const authorization = str(doc.authorization_endpoint);
        const token = str(doc.token_endpoint);
        if (authorization === null || token === null || str(doc.jwks_uri) === null) throw failed();
        return {
          authorization,
          token,
          userinfo: str(doc.userinfo_endpoint),
          jwks: str(doc.jwks_uri),
        };
      })();
      discovered.set(p.name, found);
      // A failed discovery is retried on the next login rather than cached.
      found.catch(() => discovered.delete(p.name));
    }
    return found;
  }

  function keySet(p: UpstreamProviderConfig, uri: string) {
    let set = jwks.get(p.name);
    if (set === undefined) {
      set = createRemoteJWKSet(new URL(uri), {
        [customFetch]: (url: string, init: RequestInit) => deps.fetch(url, init),
      });
      jwks.set(p.name, set);
    }
    return set;
  }

  async function exchange(
    p: UpstreamProviderConfig,
    ep: Endpoints,
    code: string,
    verifier: string,
  ) {
    const basic = btoa(`${encodeURIComponent(p.clientId)}:${encodeURIComponent(p.clientSecret)}`);
    return await getJson(ep.token, {
      method: "POST",
      headers: {
        authorization: `Basic ${basic}`,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code,
        redirect_uri: callbackUrl(p),
        code_verifier: verifier,
        client_id: p.clientId,
      }),
    });
  }

  async function oidcIdentity(
    p: UpstreamProviderConfig,
    ep: Endpoints,
    tokens: Record<string, unknown>,
    nonce: string,
  ): Promise<Identity> {
    if (typeof tokens.id_token !== "string" || ep.jwks === null) throw failed();
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(tokens.id_token, keySet(p, ep.jwks), {
        issuer: p.issuer!,
        audience: p.clientId,
        algorithms: ID_TOKEN_ALGS,
        currentDate: clock.now(),
        clockTolerance: 30,
        requiredClaims: ["sub", "exp", "iat"],
      }));
    } catch (error) {
      if (error instanceof joseErrors.JOSEError) {
        throw new InvalidCredentialsError("The ID token is invalid", { cause: error });
      }
      throw error;
    }
    // OIDC Core §3.1.3.7: the nonce ties the ID token to this login.
    if (typeof claims.nonce !== "string" || !timingSafeEqual(claims.nonce, nonce)) throw failed();
    let email = typeof claims.email === "string" ? claims.email : null;
    let verified = claims.email_verified === true;
    if (email === null && ep.userinfo !== null && typeof tokens.access_token === "string") {
      const info = await getJson(ep.userinfo, {
        headers: { authorization: `Bearer ${tokens.access_token}` },
      });
      // OIDC Core §5.3.2: userinfo must be about the ID token's subject.
      if (info.sub === claims.sub) {
        email = typeof info.email === "string" ? info.email : null;
        verified = info.email_verified === true;
      }
    }
    return {
      subject: claims.sub!,
      email,
      emailVerified: verified,
      name: typeof claims.name === "string" ? claims.name : null,
    };
  }

  async function githubIdentity(ep: Endpoints, tokens: Record<string, unknown>): Promise<Identity> {
    if (typeof tokens.access_token !== "string" || ep.userinfo === null) throw failed();
    const auth = { authorization: `Bearer ${tokens.access_token}` };
    const user = await getJson(ep.userinfo, { headers: auth });
    if (typeof user.id !== "number" && typeof user.id !== "string") throw failed();
    // Without the user:email scope GitHub refuses this list: then there is no verified address.
    const listed = await fetchJson(new URL("/user/emails", ep.userinfo).href, { headers: auth });
    const emails = listed.ok ? listed.body : [];
    const primary = Array.isArray(emails)
      ? emails.find((e) =>
        typeof e === "object" && e !== null && e.primary === true && e.verified === true
      )
      : undefined;
    return {
      subject: String(user.id),
      email: typeof primary?.email === "string" ? primary.email : null,
      emailVerified: primary !== undefined,
      name: typeof user.name === "string" ? user.name : null,
    };
  }

  async function resolveAccount(
    p: UpstreamProviderConfig,
    id: Identity,
    meta: RequestMeta,
  ): Promise<UserRecord> {
    const link = await kv.get<string>(upstreamLinkKey(p.name, id.subject));
    if (link.value !== null) {
      const user = await users.getUser(link.value);
      if (user !== null) return user;
    }
    // Only an address the provider vouches for may pick or claim a Bulwark account.
    if (id.email === null || !id.emailVerified) {
      throw new ForbiddenError("The provider did not confirm a verified email address");
    }
    const email = normalizeEmail(id.email);
    let user = await users.getUserByEmail(email);
    let created = false;
    if (user === null) {
      try {
        const fresh = await users.createUser({
          email,
          displayName: id.name?.slice(0, 100) ?? null,
          passwordHash: NO_PASSWORD,
        });
        // The provider vouched for the address, so the new account starts verified.
        user = await users.updateUser(fresh.id, (u) => ({
          ...u,
          email_verified_at: clock.now().toISOString(),
        })) ?? fresh;
        created = true;
      } catch (error) {
        // Registered concurrently: link to the account that won.
        if (!(error instanceof ConflictError)) throw error;
        user = await users.getUserByEmail(email);
        if (user === null) throw error;
      }
    }
    if (!created && !isEmailVerified(user)) {
      // Pre-account hijacking: someone may have registered this address without owning it;
      // linking would hand the real owner's provider login to that account.
      throw new ForbiddenError("Verify this account's email address before linking a provider");
    }
    await kv.set(upstreamLinkKey(p.name, id.subject), user.id);
    await audit.record({
      type: "upstream.linked",
      outcome: "success",
      userId: user.id,
      meta,
      details: { provider: p.name, created },
    });
    return user;
  }

  return {
    list() {
      return deps.providers.map((p) => ({ name: p.name, display_name: p.displayName }));
    },

    async begin(name, redirectTo) {
      const p = provider(name);
      const ep = await endpoints(p);
      const state = randomSecret();
      const verifier = randomSecret();
      const nonce = randomSecret();
      const browserSecret = randomSecret();
      const now = clock.now();
      const record: StateRecord = {
        provider: p.name,
        verifier,
        nonce,
        redirect_to: redirectTo,
        browser_hash: sha256(browserSecret),
        expires_at: new Date(now.getTime() + STATE_TTL_MS).toISOString(),
      };
      await kv.set(upstreamStateKey(sha256(state)), record, {
        expireIn: expireInUntil(record.expires_at, now),
      });
      const url = new URL(ep.authorization);
      url.search = new URLSearchParams({
        response_type: "code",
        client_id: p.clientId,
        redirect_uri: callbackUrl(p),
        scope: p.scopes.join(" "),
        state,
        code_challenge: sha256(verifier),
        code_challenge_method: "S256",
        ...(p.kind === "oidc" ? { nonce } : {}),
      }).toString();
      return { location: url.href, browserSecret };
    },

    async complete(name, params, browserSecret, meta) {
      const p = provider(name);
      try {
        const state = params.state ?? "";
        const entry = await kv.get<StateRecord>(upstreamStateKey(sha256(state)));
        const record = entry.value;
        // Single use: the first callback with this state wins.
        if (
          state === "" || record === null ||
          !(await kv.atomic().check(entry).delete(entry.key).commit()).ok
        ) throw failed();
        if (
          record.provider !== p.name || new Date(record.expires_at) <= clock.now() ||
          browserSecret === undefined ||
          !timingSafeEqual(sha256(browserSecret), record.browser_hash)
        ) {
          throw failed();
        }
        // RFC 9207: when the provider names itself, it must be the one we asked.
        if (params.iss !== undefined && p.issuer !== null && params.iss !== p.issuer) {
          throw failed();
        }
        if (params.error !== undefined || params.code === undefined) throw failed();
        const ep = await endpoints(p);
        const tokens = await exchange(p, ep, params.code, record.verifier);
        const identity = p.kind === "github"
          ? await githubIdentity(ep, tokens)
          : await oidcIdentity(p, ep, tokens, record.nonce);
        const user = await resolveAccount(p, identity, meta);
        if (user.disabled) throw failed();
        await audit.record({
          type: "upstream.login",
          outcome: "success",
          userId: user.id,
          meta,
          details: { provider: p.name },
        });
        return { user, redirectTo: record.redirect_to };
      } catch (error) {
        if (error instanceof InvalidCredentialsError || error instanceof ForbiddenError) {
          await audit.record({
            type: "upstream.login",
            outcome: "failure",
            meta,
            details: { provider: p.name, reason: error.message },
          });
        }
        throw error;
      }
    },
  };
}
