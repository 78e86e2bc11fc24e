/**
 * The authorization server's HTML: login, consent and error pages. Server-rendered, no
 * script at all, one nonce-bound stylesheet, every value HTML-escaped, and a CSP that lets
 * forms post only to this origin (and, for the redirect after a form, the client's origin).
 *
 * @module
 */
import type { Context } from "hono";
import type { AppEnv } from "../../middleware/app_env.ts";
import type { ClientRecord } from "../../services/oauth2/clients.ts";
import { SCOPE_DESCRIPTIONS } from "../../services/oauth2/scopes.ts";
import type { PendingRequest } from "../../services/oauth2/store.ts";

/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/**
 * The page CSP: nothing loads but the nonce'd `<style>`; `form-action` names this origin and
 * the client's redirect origin (browsers apply it to the redirect a form submission follows).
 */
export function pageCsp(nonce: string, redirectOrigin: string | null): string {
  return [
    "default-src 'none'",
    `style-src 'nonce-${nonce}'`,
    `form-action 'self'${redirectOrigin === null ? "" : ` ${redirectOrigin}`}`,
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

const STYLE =
  `body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}
label{display:block;margin:.75rem 0 .25rem}input{width:100%;padding:.5rem;box-sizing:border-box}
button{margin:1rem .5rem 0 0;padding:.5rem 1rem}.error{color:#a00}li{margin:.25rem 0}`;

function page(
  c: Context<AppEnv>,
  title: string,
  body: string,
  status: number,
  redirect: string | null,
) {
  const nonce = crypto.getRandomValues(new Uint8Array(16)).toBase64();
  c.header(
    "Content-Security-Policy",
    pageCsp(nonce, redirect === null ? null : new URL(redirect).origin),
  );
  return c.html(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${
      escapeHtml(title)
    }</title>` +
      `<meta name="viewport" content="width=device-width, initial-scale=1">` +
      `<meta name="referrer" content="no-referrer"><style nonce="${nonce}">${STYLE}</style></head>` +
      `<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`,
    status as 200,
  );
}

function hidden(request: PendingRequest, csrfToken: string): string {
  return `<input type="hidden" name="request_id" value="${escapeHtml(request.id)}">` +
    `<input type="hidden" name="csrf_token" value="${escapeHtml(csrfToken)}">`;
}

/** The login page of a pending authorization request. */
export function loginPage(
  c: Context<AppEnv>,
  view: { request: PendingRequest; client: ClientRecord; csrfToken: string },
  error: string | null = null,
  status = 200,
): Response {
  const body = `<p>Sign in to continue to <strong>${escapeHtml(view.client.name)}</strong>.</p>` +
    (error === null ? "" : `<p class="error" role="alert">${escapeHtml(error)}</p>`) +
    `<form method="post" action="/oauth2/authorize/login">${hidden(view.request, view.csrfToken)}` +
    `<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required>` +
    `<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>` +
    `<button type="submit">Sign in</button></form>`;
  // A remembered consent answers the login form with the redirect itself, so it is allowed too.
  return page(c, "Sign in", body, status, view.request.redirect_uri);
}

/** The consent page: the requested scopes in words, approve or deny. */
export function consentPage(
  c: Context<AppEnv>,
  view: { request: PendingRequest; client: ClientRecord; csrfToken: string },
): Response {
  const items = view.request.scopes.map((s) => {
    const words = SCOPE_DESCRIPTIONS[s as keyof typeof SCOPE_DESCRIPTIONS] ?? s;
    return `<li>${escapeHtml(words)} <small>(${escapeHtml(s)})</small></li>`;
  }).join("");
  const body = `<p><strong>${escapeHtml(view.client.name)}</strong> asks to:</p><ul>${items}</ul>` +
    `<p>It will be sent back to ${escapeHtml(new URL(view.request.redirect_uri).origin)}.</p>` +
    `<form method="post" action="/oauth2/authorize/consent">${
      hidden(view.request, view.csrfToken)
    }` +
    `<button type="submit" name="decision" value="approve">Allow</button>` +
    `<button type="submit" name="decision" value="deny">Deny</button></form>`;
  return page(c, "Allow access?", body, 200, view.request.redirect_uri);
}

/** An error the browser cannot be redirected for (unknown client, unregistered URI, stale form). */
export function errorPage(c: Context<AppEnv>, message: string, status = 400): Response {
  return page(c, "Cannot continue", `<p class="error">${escapeHtml(message)}</p>`, status, null);
}
