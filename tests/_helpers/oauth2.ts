/**
 * OAuth2 test helpers: oauth4webapi (an independent, certified client) talking to the app
 * in-process, a cookie-keeping "browser" for the login and consent pages, and client setup.
 */
import * as oauth from "oauth4webapi";
import type { World } from "./world.ts";
import { json, jsonInit, peer, type Requester } from "./http.ts";
import { promote, type SignedUp, signUp } from "./accounts.ts";
import { bearer } from "./http.ts";

/** The issuer of test worlds (`PUBLIC_URL` default). */
export const ISSUER = "http://localhost:8000";

/** The options oauth4webapi's request functions take. */
export type OAuthOptions = oauth.HttpRequestOptions<"GET" | "POST", unknown>;

/** oauth4webapi request options that route every request into `app` (no socket). */
export function oauthOptions(app: Requester, ip = "198.51.100.20"): OAuthOptions {
  return {
    [oauth.allowInsecureRequests]: true,
    [oauth.customFetch]: async (url: string, init: oauth.CustomFetchOptions<string, unknown>) => {
      const u = new URL(url);
      return await app.request(u.pathname + u.search, {
        method: init.method,
        headers: init.headers,
        body: (init.body ?? null) as BodyInit | null,
      }, peer(ip));
    },
  };
}

/** Discovers the server through RFC 8414 metadata, as a real client would. */
export async function discover(app: Requester): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(ISSUER);
  const res = await oauth.discoveryRequest(issuer, { ...oauthOptions(app), algorithm: "oauth2" });
  return await oauth.processDiscoveryResponse(issuer, res);
}

/** A minimal cookie jar over `app.request` (or `fetch` for other origins), following nothing. */
export class Browser {
  readonly cookies = new Map<string, string>();
  constructor(readonly app: Requester, readonly ip = "198.51.100.10") {}

  #store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const i = pair!.indexOf("=");
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      if (value === "" || /max-age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  /** One request; absolute URLs off the app's origin go out with real `fetch`. */
  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) {
      headers.set("cookie", [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    }
    const u = new URL(url, ISSUER);
    const res = u.origin === ISSUER
      ? await this.app.request(u.pathname + u.search, { ...init, headers }, peer(this.ip))
      : await fetch(u, { ...init, headers, redirect: "manual" });
    this.#store(res);
    return res;
  }

  /** Posts a form. */
  post(url: string, form: Record<string, string>): Promise<Response> {
    return this.request(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form),
    });
  }
}

/** The hidden fields of the first form on a page. */
export function formFields(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    out[m[1]!] = m[2]!.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)));
  }
  return out;
}

/** A registered client as the admin API returned it. */
export interface TestClient {
  client: oauth.Client;
  secret: string | null;
  auth: oauth.ClientAuth;
  body: Record<string, unknown>;
}

/** The redirect URI test clients register. */
export const REDIRECT_URI = "https://client.example.com/callback";

/** An admin of `world` (registered, promoted, logged in). */
export async function admin(world: World): Promise<SignedUp & { token: string }> {
  const user = await signUp(world.app);
  return { ...user, token: await promote(world, user, "admin") };
}

/** Registers a client through the admin API. */
export async function registerClient(
  world: World,
  adminToken: string,
  body: Partial<{
    name: string;
    type: "public" | "confidential";
    redirect_uris: string[];
    grant_types: string[];
    scopes: string[];
  }> = {},
): Promise<TestClient> {
  const res = await world.app.request(
    "/admin/oauth2/clients",
    jsonInit("POST", {
      name: "Test app",
      type: "confidential",
      redirect_uris: [REDIRECT_URI],
      grant_types: ["authorization_code", "refresh_token", "client_credentials"],
      scopes: ["profile:read", "notes:read"],
      ...body,
    }, bearer(adminToken)),
  );
  if (res.status !== 201) throw new Error(`client: ${res.status} ${await res.text()}`);
  const created = await json(res);
  const secret = typeof created.client_secret === "string" ? created.client_secret : null;
  return {
    client: { client_id: String(created.client_id) },
    secret,
    auth: secret === null ? oauth.None() : oauth.ClientSecretBasic(secret),
    body: created,
  };
}

/** Drives the browser leg: GET authorize, log in, answer the consent page; returns the redirect. */
export async function authorizeInBrowser(
  browser: Browser,
  authorizeUrl: URL,
  credentials: { email: string; password: string },
  decision: "approve" | "deny" = "approve",
): Promise<URL> {
  const start = await browser.request(authorizeUrl.href);
  if (start.status === 303) return new URL(start.headers.get("location")!);
  if (start.status !== 200) throw new Error(`authorize: ${start.status} ${await start.text()}`);
  const login = await browser.post("/oauth2/authorize/login", {
    ...formFields(await start.text()),
    email: credentials.email,
    password: credentials.password,
  });
  if (login.status === 303) return new URL(login.headers.get("location")!);
  if (login.status !== 200) throw new Error(`login: ${login.status} ${await login.text()}`);
  const consent = await browser.post("/oauth2/authorize/consent", {
    ...formFields(await login.text()),
    decision,
  });
  if (consent.status !== 303) throw new Error(`consent: ${consent.status} ${await consent.text()}`);
  return new URL(consent.headers.get("location")!);
}

/** A PKCE-protected authorization URL for `client`, and what the callback check needs. */
export async function authorizationRequest(
  as: oauth.AuthorizationServer,
  clientId: string,
  scope = "profile:read",
  verifier = oauth.generateRandomCodeVerifier(),
): Promise<{ url: URL; state: string; verifier: string }> {
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint!);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", clientId);
  url.searchParams.set("redirect_uri", REDIRECT_URI);
  url.searchParams.set("scope", scope);
  url.searchParams.set("state", state);
  url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set("code_challenge_method", "S256");
  return { url, state, verifier };
}

/** Runs the whole code flow with oauth4webapi; returns the token response. */
export async function codeFlow(
  world: World,
  as: oauth.AuthorizationServer,
  tc: TestClient,
  user: { email: string; password: string },
  scope = "profile:read",
): Promise<oauth.TokenEndpointResponse> {
  const req = await authorizationRequest(as, tc.client.client_id, scope);
  const callback = await authorizeInBrowser(new Browser(world.app), req.url, user);
  const params = oauth.validateAuthResponse(as, tc.client, callback, req.state);
  const res = await oauth.authorizationCodeGrantRequest(
    as,
    tc.client,
    tc.auth,
    params,
    REDIRECT_URI,
    req.verifier,
    oauthOptions(world.app),
  );
  return await oauth.processAuthorizationCodeResponse(as, tc.client, res);
}
