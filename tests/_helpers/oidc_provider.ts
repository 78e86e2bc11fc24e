/**
 * An independent OpenID provider for upstream-login tests: panva's `oidc-provider` (npm),
 * in this process on `node:http`, loopback, port 0. Its dev login form accepts any account
 * name; accounts whose name starts with "unverified" have an unverified email.
 */
// deno-lint-ignore-file no-explicit-any -- oidc-provider ships no types for its configuration callbacks
import Provider from "oidc-provider";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser } from "./oauth2.ts";

/** A running provider. */
export interface Upstream extends AsyncDisposable {
  readonly issuer: string;
}

/** Starts a provider with one confidential client redirecting to `redirectUri`. */
export async function startOidcProvider(opts: {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}): Promise<Upstream> {
  let handler: http.RequestListener = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: opts.clientId,
      client_secret: opts.clientSecret,
      redirect_uris: [opts.redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    }],
    findAccount(_ctx: unknown, sub: string) {
      return {
        accountId: sub,
        claims() {
          return {
            sub,
            email: `${sub.replace(/^unverified-/, "")}@example.test`,
            email_verified: !sub.startsWith("unverified"),
            name: `Upstream ${sub}`,
          };
        },
      };
    },
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
    // Put the claims into the ID token itself (no userinfo round trip needed).
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
    cookies: { keys: ["test-cookie-key-not-secret"] },
    ttl: {
      Session: 600,
      Interaction: 600,
      Grant: 600,
      AuthorizationCode: 60,
      IdToken: 600,
      AccessToken: 600,
    } as any,
  } as any);
  handler = provider.callback() as http.RequestListener;
  return {
    issuer,
    [Symbol.asyncDispose]: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Follows redirects from `start` through the provider's login and consent forms (logging in
 * as `account`) until a response comes back from Bulwark's callback; returns that response.
 */
export async function loginUpstream(
  browser: Browser,
  start: string,
  account: string,
  bulwarkOrigin: string,
): Promise<Response> {
  let url = start;
  let init: RequestInit = {};
  for (let hop = 0; hop < 20; hop++) {
    const res = await browser.request(url, init);
    const here = new URL(url, bulwarkOrigin);
    if (here.origin === bulwarkOrigin && here.pathname.endsWith("/callback")) return res;
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel();
      url = new URL(res.headers.get("location")!, here).href;
      init = {};
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`${res.status} at ${url}: ${html.slice(0, 300)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1];
    if (action === undefined || prompt === undefined) throw new Error(`no form at ${url}`);
    url = new URL(action.replaceAll("&amp;", "&"), here).href;
    init = {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(
        prompt === "login" ? { prompt, login: account, password: "anything" } : { prompt },
      ),
    };
  }
  throw new Error("too many redirects");
}
