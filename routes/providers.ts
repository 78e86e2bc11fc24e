import { Hono } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { z } from "zod";
import type { AppEnv } from "../middleware/app_env.ts";
import { requestMeta } from "../middleware/auth.ts";
import { originMatcher } from "../middleware/cors.ts";
import { validate } from "../middleware/validate.ts";
import { ValidationError } from "../services/core/errors.ts";
import { sendTokens, setSessionCookies } from "./auth.ts";
import type { Deps, Services } from "./deps.ts";
import { jsonResponse, route } from "./_route.ts";

/** Binds an upstream login to the browser that started it (login CSRF); HttpOnly, Lax. */
const STATE_COOKIE = "bulwark_oidc";

const NameParam = z.strictObject({ name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/) });
const AuthorizeQuery = z.strictObject({ redirect_to: z.string().max(2048).optional() });

const ProviderOut = z.object({ name: z.string(), display_name: z.string() });

/** `/auth/providers`: "log in with …" through upstream OAuth2 / OpenID Connect providers. */
export function providerRoutes(deps: Deps, services: Services): Hono<AppEnv> {
  const { upstream, auth } = services;
  const frontEnd = originMatcher(deps.config.corsOrigins);
  return new Hono<AppEnv>()
    .get(
      "/",
      route({
        summary: "The configured upstream providers",
        tags: ["auth"],
        responses: { 200: jsonResponse(z.array(ProviderOut), "Providers") },
      }),
      (c) => c.json(upstream.list()),
    )
    .get(
      "/:name/authorize",
      route({
        summary: "Start a login at an upstream provider (state, PKCE S256, nonce)",
        tags: ["auth"],
        responses: { 302: { description: "To the provider" } },
        policy: { lockdown: true },
      }),
      validate("param", NameParam),
      validate("query", AuthorizeQuery),
      async (c) => {
        const { redirect_to } = c.req.valid("query");
        let redirectTo: string | null = null;
        if (redirect_to !== undefined) {
          // Only an allowed front-end origin may receive the session (no open redirect).
          let url: URL | null = null;
          try {
            url = new URL(redirect_to);
          } catch (error) {
            if (!(error instanceof TypeError)) throw error;
          }
          if (url === null || url.username !== "" || frontEnd(url.origin) === null) {
            throw new ValidationError("Request validation failed", {
              errors: [{ path: "redirect_to", message: "Not an allowed front-end origin" }],
            });
          }
          redirectTo = url.href;
        }
        const { location, browserSecret } = await upstream.begin(
          c.req.valid("param").name,
          redirectTo,
        );
        // Lax: the provider's redirect back is a cross-site top-level GET.
        setCookie(c, STATE_COOKIE, browserSecret, {
          path: "/",
          secure: true,
          httpOnly: true,
          sameSite: "Lax",
          maxAge: 600,
          prefix: "host",
        });
        return c.redirect(location, 302);
      },
    )
    .get(
      "/:name/callback",
      route({
        summary: "Finish an upstream login: a Bulwark session (JSON, or cookies and a 303)",
        tags: ["auth"],
        responses: { 200: { description: "Token pair" }, 303: { description: "To redirect_to" } },
        policy: { rate: "login" },
      }),
      validate("param", NameParam),
      async (c) => {
        const meta = requestMeta(c);
        const params = Object.fromEntries(new URL(c.req.url).searchParams);
        const { user, redirectTo } = await upstream.complete(
          c.req.valid("param").name,
          params,
          getCookie(c, STATE_COOKIE, "host"),
          meta,
        );
        setCookie(c, STATE_COOKIE, "", { path: "/", secure: true, maxAge: 0, prefix: "host" });
        const issued = await auth.startSession(user, {
          rememberMe: false,
          useCookies: redirectTo !== null,
        }, meta);
        if (redirectTo === null || issued.csrfToken === null) return sendTokens(c, issued);
        setSessionCookies(c, issued.pair, issued.csrfToken);
        return c.redirect(redirectTo, 303);
      },
    );
}
