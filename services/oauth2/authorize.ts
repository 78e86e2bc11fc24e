import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { Clock } from "../core/clock.ts";
import { randomId, randomSecret, sha256, timingSafeEqual } from "../core/crypto.ts";
import type { UserRecord, UserService } from "../identity/users.ts";
import type { AuthService } from "../auth/auth.ts";
import { type ClientRecord, type ClientStore, matchRedirectUri } from "./clients.ts";
import type { OAuthErrorCode } from "./errors.ts";
import { grantableScopes, parseScope } from "./scopes.ts";
import type { OAuth2Store, PendingRequest } from "./store.ts";

/**
 * The authorization request cannot be answered by a redirect (unknown client, redirect URI
 * not registered, or the page's request is gone): the user sees an error page (RFC 6749
 * §4.1.2.1 — never redirect to an unverified URI).
 */
export class AuthorizationPageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuthorizationPageError";
  }
}

/** What the browser is shown next. */
export type AuthorizeStep =
  | { kind: "redirect"; location: string }
  | {
    kind: "login" | "consent";
    request: PendingRequest;
    client: ClientRecord;
    /** The CSRF token for the page's form (only its hash is stored). */
    csrfToken: string;
    /** Set on a new request: the secret for the browser-binding cookie. */
    browserSecret: string | null;
  };

/** The browser's proof that it is the one that started a request. */
export interface BrowserProof {
  requestId: string;
  browserSecret: string;
  csrfToken: string;
}

/** The code flow's browser leg: `/oauth2/authorize`, then login and consent pages. */
export interface AuthorizeFlow {
  /** Validates an authorization request (RFC 6749 §4.1.1) and starts it. */
  start(params: Readonly<Record<string, string>>, meta: RequestMeta): Promise<AuthorizeStep>;
  /**
   * Logs the user in for a pending request (same lockout and delays as `POST /auth/login`).
   *
   * @throws {InvalidCredentialsError} | {AccountLockedError} | {LoginThrottledError}
   * @throws {AuthorizationPageError} when the request or its browser binding is wrong
   */
  login(proof: BrowserProof, email: string, password: string, meta: RequestMeta): Promise<
    AuthorizeStep
  >;
  /**
   * The pending request behind a form, to show its login page again after a refusal.
   *
   * @throws {AuthorizationPageError} when the request or its browser binding is wrong
   */
  resume(proof: BrowserProof): Promise<{ request: PendingRequest; client: ClientRecord }>;
  /**
   * Records the user's answer on the consent page and redirects back to the client.
   *
   * @throws {AuthorizationPageError} when the request or its browser binding is wrong
   */
  decide(proof: BrowserProof, approve: boolean, meta: RequestMeta): Promise<AuthorizeStep>;
}

/** Dependencies of {@linkcode createAuthorizeFlow}. */
export interface AuthorizeFlowDeps {
  clock: Clock;
  audit: AuditService;
  auth: AuthService;
  users: UserService;
  clients: ClientStore;
  store: OAuth2Store;
  issuer: string;
  /** Lifetime of an authorization code (RFC 6749 §4.1.2: short; 60 s here). */
  codeTtlSeconds: number;
  /** Time a user has for the login and consent pages. */
  requestTtlSeconds: number;
  /**
   * Hook point "unverified accounts cannot grant consent" (API.md): throws (e.g.
   * `EmailUnverifiedError`) when `user` may not grant OAuth2 consent yet.
   */
  assertMayGrantConsent(user: UserRecord): void | Promise<void>;
}

/** RFC 7636 §4.2: `code_challenge` for S256 is BASE64URL(SHA256(verifier)): 43 characters. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
/** `state` is opaque to us but bounded; RFC 6749 only asks that it be echoed. */
const STATE = /^[\x20-\x7e]{1,512}$/;

/** Creates the browser leg of the authorization code flow. */
export function createAuthorizeFlow(deps: AuthorizeFlowDeps): AuthorizeFlow {
  const { clock, audit, clients, store } = deps;

  function redirect(
    redirectUri: string,
    params: Record<string, string | undefined>,
  ): AuthorizeStep {
    const url = new URL(redirectUri);
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined) url.searchParams.set(name, value);
    }
    // RFC 9207: tells the client which server answered (mix-up defence).
    url.searchParams.set("iss", deps.issuer);
    return { kind: "redirect", location: url.href };
  }

  function fail(
    redirectUri: string,
    state: string | undefined,
    error: OAuthErrorCode,
    description: string,
  ): AuthorizeStep {
    return redirect(redirectUri, { error, error_description: description, state });
  }

  async function loadRequest(proof: BrowserProof): Promise<Deno.KvEntry<PendingRequest>> {
    const entry = /^[A-Za-z0-9_-]{22}$/.test(proof.requestId)
      ? await store.getRequest(proof.requestId)
      : null;
    const request = entry?.value ?? null;
    if (entry === null || request === null || entry.versionstamp === null) {
      throw new AuthorizationPageError("This sign-in request has expired; start again");
    }
    // Both must match: the cookie binds the request to this browser, the form token to this page.
    const browserOk = timingSafeEqual(sha256(proof.browserSecret), request.browser_hash);
    const csrfOk = timingSafeEqual(sha256(proof.csrfToken), request.csrf_hash);
    if (!browserOk || !csrfOk || new Date(request.expires_at) <= clock.now()) {
      throw new AuthorizationPageError("This sign-in request is not valid here; start again");
    }
    return entry as Deno.KvEntry<PendingRequest>;
  }

  async function requireClient(clientId: string): Promise<ClientRecord> {
    const client = await clients.get(clientId);
    if (client === null) throw new AuthorizationPageError("The application no longer exists");
    return client;
  }

  async function issueCode(
    request: PendingRequest,
    user: UserRecord,
    meta: RequestMeta,
  ): Promise<AuthorizeStep> {
    const code = randomSecret();
    const now = clock.now();
    await store.putCode(sha256(code), {
      client_id: request.client_id,
      redirect_uri: request.redirect_uri,
      code_challenge: request.code_challenge,
      user_id: user.id,
      password_version: request.password_version ?? user.password_changed_at,
      scopes: request.scopes,
      grant_id: randomId(),
      expires_at: new Date(now.getTime() + deps.codeTtlSeconds * 1000).toISOString(),
    });
    await audit.record({
      type: "oauth2.code_issued",
      outcome: "success",
      userId: user.id,
      meta,
      details: { client_id: request.client_id, scopes: request.scopes },
    });
    return redirect(request.redirect_uri, { code, state: request.state });
  }

  /** After login: skip the consent page when a remembered consent covers every scope. */
  async function afterLogin(
    request: PendingRequest,
    client: ClientRecord,
    user: UserRecord,
    meta: RequestMeta,
  ): Promise<AuthorizeStep | null> {
    const scopes = grantableScopes(request.scopes, client.scopes, user.role);
    if (scopes.length === 0) {
      return fail(
        request.redirect_uri,
        request.state,
        "invalid_scope",
        "None of the requested scopes can be granted to this user",
      );
    }
    request.scopes = scopes;
    const consent = await store.getConsent(user.id, client.id);
    if (consent !== null && scopes.every((s) => consent.scopes.includes(s))) {
      await deps.assertMayGrantConsent(user);
      return await issueCode(request, user, meta);
    }
    return null;
  }

  return {
    async start(params, _meta) {
      const client = await clients.get(params.client_id ?? "");
      const redirectUri = params.redirect_uri ?? "";
      // Never redirect before both the client and the URI are known (RFC 6749 §4.1.2.1).
      if (client === null) throw new AuthorizationPageError("Unknown application (client_id)");
      if (!matchRedirectUri(client.redirect_uris, redirectUri)) {
        throw new AuthorizationPageError("The redirect_uri is not registered for this application");
      }
      const state = params.state;
      if (params.response_type !== "code") {
        return fail(redirectUri, state, "unsupported_response_type", "Only response_type=code");
      }
      if (!client.grant_types.includes("authorization_code")) {
        return fail(redirectUri, state, "unauthorized_client", "The code flow is not allowed");
      }
      if (state === undefined || !STATE.test(state)) {
        // Mandatory here (API.md): the client's CSRF defence for its redirect endpoint.
        return fail(redirectUri, undefined, "invalid_request", "state is required");
      }
      const challenge = params.code_challenge;
      const method = params.code_challenge_method;
      if (challenge === undefined) {
        if (method !== undefined) {
          return fail(redirectUri, state, "invalid_request", "code_challenge is missing");
        }
        if (client.type === "public") {
          return fail(redirectUri, state, "invalid_request", "PKCE (S256) is required");
        }
      } else if (method !== "S256") {
        // RFC 9700 §2.1.1: "plain" (the RFC 7636 default when no method is named) is refused.
        return fail(redirectUri, state, "invalid_request", "code_challenge_method must be S256");
      } else if (!S256_CHALLENGE.test(challenge)) {
        return fail(redirectUri, state, "invalid_request", "code_challenge is malformed");
      }
      const requested = parseScope(params.scope);
      const unknown = (requested ?? []).filter((s) => !client.scopes.includes(s as never));
      if (unknown.length > 0) {
        return fail(redirectUri, state, "invalid_scope", `Scope not allowed: ${unknown.join(" ")}`);
      }
      const scopes = grantableScopes(requested, client.scopes, null);
      if (scopes.length === 0) {
        return fail(redirectUri, state, "invalid_scope", "No scope to grant");
      }
      const browserSecret = randomSecret();
      const csrfToken = randomSecret();
      const request: PendingRequest = {
        id: randomId(),
        client_id: client.id,
        redirect_uri: redirectUri,
        scopes,
        state,
        code_challenge: challenge ?? null,
        browser_hash: sha256(browserSecret),
        csrf_hash: sha256(csrfToken),
        user_id: null,
        expires_at: new Date(clock.now().getTime() + deps.requestTtlSeconds * 1000).toISOString(),
      };
      await store.putRequest(request);
      return { kind: "login", request, client, csrfToken, browserSecret };
    },

    async resume(proof) {
      const entry = await loadRequest(proof);
      return { request: entry.value, client: await requireClient(entry.value.client_id) };
    },

    async login(proof, email, password, meta) {
      const entry = await loadRequest(proof);
      const client = await requireClient(entry.value.client_id);
      const user = await deps.auth.verifyPassword(email, password, meta);
      const request = {
        ...entry.value,
        user_id: user.id,
        password_version: user.password_changed_at,
      };
      const done = await afterLogin(request, client, user, meta);
      if (done !== null) {
        if (!(await store.takeRequest(entry))) {
          throw new AuthorizationPageError("This sign-in request was already used");
        }
        return done;
      }
      // A new CSRF token for the consent form: the login page's token is spent.
      const csrfToken = randomSecret();
      const next = { ...request, csrf_hash: sha256(csrfToken) };
      if (!(await store.updateRequest(entry, next))) {
        throw new AuthorizationPageError("This sign-in request was already used");
      }
      return { kind: "consent", request: next, client, csrfToken, browserSecret: null };
    },

    async decide(proof, approve, meta) {
      const entry = await loadRequest(proof);
      const request = entry.value;
      if (request.user_id === null) {
        throw new AuthorizationPageError("Sign in first");
      }
      // Single use: a second submission of the same form finds nothing.
      if (!(await store.takeRequest(entry))) {
        throw new AuthorizationPageError("This sign-in request was already used");
      }
      const user = await deps.users.getUser(request.user_id);
      // A password reset or change since this sign-in (account recovery) voids it.
      if (
        user === null || user.disabled ||
        (request.password_version ?? user.password_changed_at) !== user.password_changed_at
      ) {
        return fail(request.redirect_uri, request.state, "access_denied", "Account unavailable");
      }
      if (!approve) {
        await audit.record({
          type: "oauth2.consent_denied",
          outcome: "failure",
          userId: user.id,
          meta,
          details: { client_id: request.client_id, scopes: request.scopes },
        });
        return fail(request.redirect_uri, request.state, "access_denied", "The user said no");
      }
      await deps.assertMayGrantConsent(user);
      await store.addConsent(user.id, request.client_id, request.scopes);
      await audit.record({
        type: "oauth2.consent_granted",
        outcome: "success",
        userId: user.id,
        meta,
        details: { client_id: request.client_id, scopes: request.scopes },
      });
      return await issueCode(request, user, meta);
    },
  };
}
