import { type Context, Hono } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import type { AppEnv } from "../../middleware/app_env.ts";
import { requestMeta } from "../../middleware/auth.ts";
import {
  AccountLockedError,
  AppError,
  EmailUnverifiedError,
  InvalidCredentialsError,
  LoginThrottledError,
  RateLimitedError,
} from "../../services/core/errors.ts";
import {
  AuthorizationPageError,
  type AuthorizeStep,
  type BrowserProof,
} from "../../services/oauth2/authorize.ts";
import type { Deps, Services } from "../deps.ts";
import { route } from "../_route.ts";
import { consentPage, errorPage, loginPage } from "./pages.ts";

/** Binds a pending authorization request to the browser that started it (HttpOnly, Strict). */
const BROWSER_COOKIE = "bulwark_oauth2";

const HTML = { description: "An HTML page", content: { "text/html": {} } };

/** `/oauth2/authorize` and its login and consent forms. */
export function authorizeRoutes(_deps: Deps, services: Services): Hono<AppEnv> {
  const { oauth2 } = services;

  function show(c: Context<AppEnv>, step: AuthorizeStep): Response {
    if (step.kind === "redirect") {
      // 303: the browser follows with a GET even after a form POST.
      return c.redirect(step.location, 303);
    }
    if (step.browserSecret !== null) {
      setCookie(c, BROWSER_COOKIE, step.browserSecret, {
        path: "/",
        secure: true,
        httpOnly: true,
        sameSite: "Strict",
        maxAge: 600,
        prefix: "host",
      });
    }
    return step.kind === "login" ? loginPage(c, step) : consentPage(c, step);
  }

  async function proof(c: Context<AppEnv>): Promise<BrowserProof & { form: URLSearchParams }> {
    const type = c.req.header("content-type") ?? "";
    const form = /^application\/x-www-form-urlencoded\s*(;|$)/i.test(type)
      ? new URLSearchParams(await c.req.text())
      : new URLSearchParams();
    return {
      form,
      requestId: form.get("request_id") ?? "",
      csrfToken: form.get("csrf_token") ?? "",
      browserSecret: getCookie(c, BROWSER_COOKIE, "host") ?? "",
    };
  }

  function pageErrors(c: Context<AppEnv>, error: unknown): Response {
    if (error instanceof AuthorizationPageError) return errorPage(c, error.message);
    if (error instanceof EmailUnverifiedError) return errorPage(c, error.message, 403);
    throw error;
  }

  return new Hono<AppEnv>()
    .get(
      "/authorize",
      route({
        summary: "Start an authorization code flow (RFC 6749 §4.1, PKCE S256)",
        tags: ["oauth2"],
        responses: { 200: HTML, 303: { description: "Back to the client" }, 400: HTML },
        policy: { lockdown: true },
      }),
      async (c) => {
        try {
          const query = new URL(c.req.url).searchParams;
          const params = Object.fromEntries(query);
          // RFC 6749 §3.1: no parameter may repeat; with two redirect_uris, neither is trusted.
          if (Object.keys(params).length !== [...query.keys()].length) {
            return errorPage(c, "A request parameter is repeated");
          }
          return show(c, await oauth2.start(params, requestMeta(c)));
        } catch (error) {
          return pageErrors(c, error);
        }
      },
    )
    .post(
      "/authorize/login",
      route({
        summary: "The authorization server's login form",
        tags: ["oauth2"],
        responses: { 200: HTML, 303: { description: "Back to the client" }, 401: HTML },
        // The same per-IP budget as POST /auth/login.
        policy: { rate: "login" },
      }),
      async (c) => {
        const meta = requestMeta(c);
        const p = await proof(c);
        const email = (p.form.get("email") ?? "").trim().slice(0, 254);
        const password = (p.form.get("password") ?? "").slice(0, 1024);
        try {
          return show(c, await oauth2.login(p, email, password, meta));
        } catch (error) {
          if (error instanceof AuthorizationPageError) return pageErrors(c, error);
          const retry = loginRefusal(error);
          if (retry === null) throw error;
          // Re-show the same form: its request and CSRF token stay valid for another try.
          const view = await oauth2.resume(p).catch((e) => e as Error);
          if (view instanceof Error) return pageErrors(c, view);
          if (retry.retryAfter !== undefined) c.header("Retry-After", String(retry.retryAfter));
          return loginPage(c, { ...view, csrfToken: p.csrfToken }, retry.message, retry.status);
        }
      },
    )
    .post(
      "/authorize/consent",
      route({
        summary: "The authorization server's consent form",
        tags: ["oauth2"],
        responses: { 303: { description: "Back to the client" }, 400: HTML },
      }),
      async (c) => {
        const p = await proof(c);
        try {
          const approve = p.form.get("decision") === "approve";
          return show(c, await oauth2.decide(p, approve, requestMeta(c)));
        } catch (error) {
          return pageErrors(c, error);
        }
      },
    );
}

function loginRefusal(
  error: unknown,
): { message: string; status: number; retryAfter: number | undefined } | null {
  if (!(error instanceof AppError)) return null;
  const retryAfter = error.retryAfter === undefined
    ? undefined
    : Math.max(1, Math.ceil(error.retryAfter));
  if (error instanceof InvalidCredentialsError) {
    return { message: "Invalid email or password", status: 401, retryAfter };
  }
  if (error instanceof AccountLockedError) {
    return {
      message: "Too many failed attempts: the account is locked for a while",
      status: 423,
      retryAfter,
    };
  }
  if (error instanceof LoginThrottledError || error instanceof RateLimitedError) {
    return { message: "Too many attempts; wait a moment and try again", status: 429, retryAfter };
  }
  return null;
}
