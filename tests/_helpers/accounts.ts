/** Test users: a factory, and the one way tests register, log in and promote them. */
import type { Role } from "../../services/auth/permissions.ts";
import type { Services } from "../../services/container.ts";
import { json, jsonInit, peer, type Requester } from "./http.ts";

/** A password that satisfies the policy. */
export const GOOD_PASSWORD = "Correct-Horse-42-Battery!";

/** A registration body. */
export interface NewUser {
  email: string;
  password: string;
  display_name: string;
}

let userCounter = 0;

/** A fresh, unique registration body. */
export function randomUser(overrides: Partial<NewUser> = {}): NewUser {
  userCounter++;
  return {
    email: `user${userCounter}-${crypto.randomUUID().slice(0, 8)}@example.com`,
    password: GOOD_PASSWORD,
    display_name: `Tester ${userCounter}`,
    ...overrides,
  };
}

/** Options of {@linkcode login}. */
export interface LoginOptions {
  remember_me?: boolean;
  use_cookies?: boolean;
  /** Sends the OAuth2 password form (RFC 6749 §4.3) asking for this scope, instead of JSON. */
  scope?: string;
  /** The `User-Agent` header. @default none */
  userAgent?: string;
  /** More request headers, e.g. `X-Forwarded-For`. */
  headers?: Record<string, string>;
  /** The client's address. @default none (Hono's `app.request` has no peer) */
  ip?: string;
}

/** `POST /auth/login`; returns the response, whatever it is. */
export async function login(
  app: Requester,
  credentials: { email: string; password: string },
  options: LoginOptions = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.userAgent !== undefined) headers["user-agent"] = options.userAgent;
  const env = options.ip === undefined ? undefined : peer(options.ip);
  if (options.scope !== undefined) {
    return await app.request("/auth/login", {
      method: "POST",
      headers: { ...headers, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "password",
        username: credentials.email,
        password: credentials.password,
        scope: options.scope,
      }),
    }, env);
  }
  const body: Record<string, unknown> = {
    email: credentials.email,
    password: credentials.password,
  };
  if (options.remember_me !== undefined) body.remember_me = options.remember_me;
  if (options.use_cookies !== undefined) body.use_cookies = options.use_cookies;
  return await app.request("/auth/login", jsonInit("POST", body, headers), env);
}

/** The token pair of a successful login, refresh or password change. */
export interface TokenPair {
  access: string;
  refresh: string;
  sessionId: string;
  /** The whole response body. */
  body: Record<string, unknown>;
}

/**
 * Reads the token pair from a 200 answer.
 *
 * @throws {Error} with the status and body when the answer is not 200.
 */
export async function tokenPair(res: Response): Promise<TokenPair> {
  if (res.status !== 200) {
    throw new Error(`expected a token pair: ${res.status} ${await res.text()}`);
  }
  const body = await json(res);
  return {
    access: String(body.access_token),
    refresh: String(body.refresh_token),
    sessionId: String(body.session_id),
    body,
  };
}

/** A registered, logged-in user. */
export interface SignedUp {
  user: NewUser;
  id: string;
  access: string;
  refresh: string;
  sessionId: string;
}

/** Registers `user` and logs in; returns the registration body, the user id and the pair. */
export async function signUp(app: Requester, user: NewUser = randomUser()): Promise<SignedUp> {
  const reg = await app.request("/auth/register", jsonInit("POST", user));
  if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${await reg.text()}`);
  const { id } = await json(reg);
  const { access, refresh, sessionId } = await tokenPair(await login(app, user));
  return { user, id: String(id), access, refresh, sessionId };
}

/** Gives a signed-up user `role` and logs in again; returns the new access token. */
export async function promote(
  world: { services: Services; app: Requester },
  signedUp: { id: string; user: { email: string; password: string } },
  role: Role,
): Promise<string> {
  await world.services.users.updateUser(signedUp.id, (u) => ({ ...u, role }));
  return (await tokenPair(await login(world.app, signedUp.user))).access;
}
