import { type Context, Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { resolver } from "hono-openapi";
import { z } from "zod";
import type { AppEnv } from "../middleware/app_env.ts";
import { requestMeta, requireSession, requireSessionAuth } from "../middleware/auth.ts";
import { isJsonContentType, parseInput, validate } from "../middleware/validate.ts";
import type { IssuedTokens, LoginInput, RefreshInput } from "../services/auth/auth.ts";
import {
  MalformedJsonError,
  UnsupportedMediaTypeError,
  ValidationError,
} from "../services/core/errors.ts";
import type { Deps, Services } from "./deps.ts";
import { Email, jsonResponse, LoginIdentifier, Password, route } from "./_route.ts";

const RegisterBody = z.strictObject({
  email: Email,
  password: Password,
  display_name: z.string().trim().min(1).max(100).optional(),
});

const LoginJson = z.strictObject({
  email: LoginIdentifier,
  password: Password,
  remember_me: z.boolean().optional(),
  use_cookies: z.boolean().optional(),
  /** The device token of an earlier login (when the device cookie cannot be sent). */
  device_token: z.string().max(512).optional(),
});

/** OAuth2 password grant form (RFC 6749 §4.3.2), as OAuth2PasswordBearer clients send it. */
const LoginForm = z.strictObject({
  grant_type: z.literal("password").optional(),
  username: LoginIdentifier,
  password: Password,
  scope: z.string().max(1024).optional(),
  client_id: z.string().max(256).optional(),
  client_secret: z.string().max(256).optional(),
});

/** `refresh_token` may be omitted when the refresh cookie carries it. */
const RefreshBody = z.strictObject({ refresh_token: z.string().min(1).max(4096).optional() });

const UserOut = z.object({
  id: z.string(),
  email: z.email(),
  display_name: z.string().nullable(),
  role: z.enum(["user", "moderator", "admin"]),
  created_at: z.iso.datetime(),
});

const TokenPairOut = z.object({
  access_token: z.string(),
  refresh_token: z.string(),
  token_type: z.literal("bearer"),
  expires_in: z.number().int(),
  refresh_expires_in: z.number().int(),
  session_id: z.string(),
  device_token: z.string().optional().describe(
    "A login's signed device token (also set as a device cookie): present it at later logins",
  ),
});

/** `/auth/*`: register, login, refresh, logout, logout-all. */
export function authRoutes(_deps: Deps, services: Services): Hono<AppEnv> {
  const { auth } = services;
  return new Hono<AppEnv>()
    .post(
      "/register",
      route({
        summary: "Create an account",
        tags: ["auth"],
        responses: { 201: jsonResponse(UserOut, "Created"), 409: { description: "Email taken" } },
        policy: { rate: "login" },
      }),
      validate("json", RegisterBody),
      async (c) => {
        const body = c.req.valid("json");
        const user = await auth.register({
          email: body.email,
          password: body.password,
          displayName: body.display_name ?? null,
        }, requestMeta(c));
        c.header("Location", "/users/me");
        return c.json({
          id: user.id,
          email: user.email,
          display_name: user.display_name,
          role: user.role,
          created_at: user.created_at,
        }, 201);
      },
    )
    .post(
      "/login",
      route({
        summary: "Log in with email and password (JSON or OAuth2 password form)",
        tags: ["auth"],
        requestBody: {
          content: {
            "application/json": { schema: resolver(LoginJson) },
            "application/x-www-form-urlencoded": { schema: resolver(LoginForm) },
          },
        },
        responses: {
          200: jsonResponse(TokenPairOut, "Token pair"),
          401: { description: "Invalid credentials" },
        },
        policy: { rate: "login" },
      }),
      async (c) => {
        const input = await readLoginInput(c.req.raw);
        const device = auth.deviceCookie(input.email);
        const issued = await auth.login({
          ...input,
          deviceToken: input.deviceToken ??
            [device.name, ...device.olderNames].map((name) => getCookie(c, name, "host"))
              .find((value) => value !== undefined),
        }, requestMeta(c));
        if (issued.deviceToken !== null) {
          setCookie(c, device.name, issued.deviceToken, {
            path: "/",
            secure: true,
            httpOnly: true,
            sameSite: "Strict",
            maxAge: device.maxAgeSeconds,
            prefix: "host",
          });
        }
        return sendTokens(c, issued);
      },
    )
    .post(
      "/refresh",
      route({
        summary: "Exchange a refresh token for a new pair (single use)",
        tags: ["auth"],
        responses: { 200: jsonResponse(TokenPairOut, "Token pair") },
        policy: { lockdown: true },
      }),
      async (c) => {
        const input = await refreshInput(c);
        return sendTokens(c, await auth.refresh(input, requestMeta(c)));
      },
    )
    .post(
      "/logout",
      route({
        summary: "Revoke this session (Bearer, or the refresh cookie with X-CSRF-Token)",
        tags: ["auth"],
        responses: { 204: { description: "Logged out" } },
        policy: { allowExpiredPassword: true },
      }),
      async (c) => {
        const cookie = getCookie(c, REFRESH_COOKIE, "host");
        if (c.req.header("authorization") === undefined && cookie !== undefined) {
          await auth.logoutWithCookie(cookieInput(c, cookie), requestMeta(c));
        } else {
          await auth.logout(requireSession(c), requestMeta(c));
        }
        clearAuthCookies(c);
        return c.body(null, 204);
      },
    )
    .post(
      "/logout-all",
      route({
        summary: "Revoke every credential of my account",
        description: "Every session (so every access and refresh token), every API key and " +
          "every OAuth2 grant of the account stops working at once.",
        tags: ["auth"],
        auth: "bearer",
        responses: { 204: { description: "Logged out" } },
        policy: { allowExpiredPassword: true },
      }),
      requireSessionAuth(),
      async (c) => {
        await auth.logoutAll(requireSession(c), requestMeta(c));
        return c.body(null, 204);
      },
    );
}

/** The refresh cookie: HttpOnly, so scripts (and XSS) never see the token. */
const REFRESH_COOKIE = "bulwark_refresh";
/** The CSRF cookie: readable by the page, echoed in `X-CSRF-Token`. */
const CSRF_COOKIE = "bulwark_csrf";

/**
 * Sends a token pair. Cookie sessions get the refresh token only as a
 * `__Host-` cookie (HttpOnly, Secure, SameSite=Strict, Path=/) plus a readable
 * CSRF cookie; the body then carries no refresh token.
 */
export function sendTokens(c: Context<AppEnv>, issued: IssuedTokens): Response {
  const { pair, csrfToken } = issued;
  const body = {
    access_token: pair.accessToken,
    token_type: "bearer",
    expires_in: pair.expiresIn,
    refresh_expires_in: pair.refreshExpiresIn,
    session_id: pair.sessionId,
    ...(issued.deviceToken === null ? {} : { device_token: issued.deviceToken }),
  };
  if (csrfToken === null) return c.json({ ...body, refresh_token: pair.refreshToken });
  setSessionCookies(c, pair, csrfToken);
  return c.json(body);
}

/** Sets the cookie-mode session cookies: the refresh token (HttpOnly) and the readable CSRF token. */
export function setSessionCookies(
  c: Context<AppEnv>,
  pair: IssuedTokens["pair"],
  csrfToken: string,
): void {
  const base = {
    path: "/",
    secure: true,
    sameSite: "Strict",
    maxAge: pair.refreshExpiresIn,
    prefix: "host",
  } as const;
  setCookie(c, REFRESH_COOKIE, pair.refreshToken, { ...base, httpOnly: true });
  setCookie(c, CSRF_COOKIE, csrfToken, { ...base, httpOnly: false });
}

function clearAuthCookies(c: Context<AppEnv>): void {
  for (const name of [REFRESH_COOKIE, CSRF_COOKIE]) {
    deleteCookie(c, name, { path: "/", secure: true, prefix: "host" });
  }
}

function cookieInput(c: Context<AppEnv>, refreshToken: string): RefreshInput {
  return {
    refreshToken,
    csrfHeader: c.req.header("x-csrf-token") ?? null,
    csrfCookie: getCookie(c, CSRF_COOKIE, "host") ?? null,
  };
}

/** The refresh token from the JSON body, or else from the cookie. */
async function refreshInput(c: Context<AppEnv>): Promise<RefreshInput> {
  const cookie = getCookie(c, REFRESH_COOKIE, "host");
  const type = c.req.header("content-type");
  const body = type === undefined && cookie !== undefined
    ? {}
    : parseInput(RefreshBody, await readJsonBody(c.req.raw));
  const token = body.refresh_token ?? cookie;
  if (token === undefined) {
    throw new ValidationError("Request validation failed", {
      errors: [{ path: "refresh_token", message: "Required (in the body or the refresh cookie)" }],
    });
  }
  return cookieInput(c, token);
}

/** Reads a JSON body, refusing other media types; a syntax error becomes 400 `malformed_json`. */
async function readJsonBody(req: Request): Promise<unknown> {
  if (!isJsonContentType(req.headers.get("content-type") ?? undefined)) {
    throw new UnsupportedMediaTypeError("Expected an application/json body");
  }
  return await readJson(req);
}

/** The login input from a JSON body or the OAuth2 password form (RFC 6749 §4.3.2). */
async function readLoginInput(req: Request): Promise<LoginInput> {
  const type = req.headers.get("content-type") ?? "";
  if (/^application\/x-www-form-urlencoded\s*(;|$)/i.test(type)) {
    const form = parseInput(LoginForm, Object.fromEntries(new URLSearchParams(await req.text())));
    return {
      email: form.username,
      password: form.password,
      rememberMe: false,
      useCookies: false,
      // An absent or blank `scope` asks for everything the role has (RFC 6749 §3.3 default).
      scope: form.scope?.trim() ? form.scope.trim().split(/\s+/) : undefined,
    };
  }
  if (!isJsonContentType(type)) {
    throw new UnsupportedMediaTypeError("Expected JSON or an OAuth2 password form");
  }
  const body = parseInput(LoginJson, await readJson(req));
  return {
    email: body.email,
    password: body.password,
    rememberMe: body.remember_me ?? false,
    useCookies: body.use_cookies ?? false,
    deviceToken: body.device_token,
  };
}

/** Reads a JSON body; a syntax error becomes 400 `malformed_json`. */
async function readJson(req: Request): Promise<unknown> {
  const text = await req.text();
  try {
    return JSON.parse(text);
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new MalformedJsonError("The body is not valid JSON", { cause: error });
    }
    throw error;
  }
}
