/**
 * Settings of the HTTP edge: CORS, proxies, body limit, TLS, logging, docs, headers, shutdown.
 * Spread into `SETTINGS` by `../settings.ts`, whose header says how to add a setting.
 *
 * @module
 */
import { z } from "zod";
import {
  bool,
  isOriginPattern,
  list,
  nonNegativeInt,
  port,
  positiveInt,
  setting,
} from "../declaration.ts";
import { LOG_LEVELS } from "../model.ts";

/** Settings of the HTTP edge: CORS, proxies, body limit, TLS, logging, docs, headers, shutdown. */
export const HTTP_SETTINGS = {
  CORS_ORIGINS: setting({
    schema: list(/,/),
    fromFile: true,
    defaultDoc: "— (none)",
    doc:
      "Comma-separated exact origins; `https://*.example.com` allows one label. `*` is refused in production.",
    show: (c) => c.corsOrigins,
    check: (origins, { production }) =>
      origins.flatMap((origin) => {
        if (origin === "*") {
          return production ? [`"CORS_ORIGINS" must not contain "*" in production`] : [];
        }
        return isOriginPattern(origin)
          ? []
          : [`"CORS_ORIGINS" entry "${origin}" is not an origin like https://app.example.com`];
      }),
  }),
  HTTP_ENGINE: setting({
    schema: z.enum(["node", "deno"]).default("node"),
    doc:
      "Plain-HTTP listener: `node` bounds header (10 s) and request (60 s) read time and idle keep-alive (5 s) against slow-loris; `deno` (`Deno.serve`, faster) bounds none of them, for use behind a proxy that does.",
    show: (c) => c.httpEngine,
  }),
  TRUST_PROXY: setting({
    schema: nonNegativeInt.max(10).default(0),
    doc: "Reverse-proxy hops whose `X-Forwarded-For` entry is trusted. 0 = use the socket peer.",
    show: (c) => c.trustProxy,
  }),
  BODY_LIMIT_BYTES: setting({
    schema: positiveInt.max(16 * 1024 * 1024).default(65536),
    doc: "JSON body limit; larger bodies get 413 without being read.",
    show: (c) => c.bodyLimitBytes,
  }),
  TLS_CERT_FILE: setting({
    schema: z.string().min(1).optional(),
    doc:
      "PEM certificate chain (ECDSA P-256 or RSA ≥ 3072): serve HTTPS. Reloaded when the file changes or on `SIGHUP`. Needs `TLS_KEY_FILE`.",
    showAs: "TLS",
    show: (c) => c.tlsCertFile === undefined ? "off" : "on",
    check: (cert, { settings }) =>
      (cert === undefined) !== (settings.TLS_KEY_FILE === undefined)
        ? `"TLS_CERT_FILE" and "TLS_KEY_FILE" must be set together`
        : undefined,
  }),
  TLS_KEY_FILE: setting({
    schema: z.string().min(1).optional(),
    doc: "PEM private key of `TLS_CERT_FILE`.",
  }),
  HTTP_REDIRECT_PORT: setting({
    schema: port.optional(),
    doc:
      "With TLS: a plain-HTTP listener answering 308 to `PUBLIC_URL` (and ACME HTTP-01 challenges).",
    show: (c) => c.httpRedirectPort ?? null,
    check: (value, { settings }) =>
      value !== undefined && settings.TLS_CERT_FILE === undefined &&
        settings.ACME_DIRECTORY_URL === undefined
        ? `"HTTP_REDIRECT_PORT" needs "TLS_CERT_FILE" and "TLS_KEY_FILE", or "ACME_DIRECTORY_URL"`
        : undefined,
  }),
  LOG_LEVEL: setting({
    schema: z.enum(LOG_LEVELS).default("info"),
    doc: "`debug`, `info`, `warn`, `error`. One JSON line per request on stdout.",
    show: (c) => c.logLevel,
  }),
  DOCS_ENABLED: setting({
    schema: bool.optional(),
    defaultDoc: "`true` except production",
    doc: "Serve `GET /docs`. Production needs `DOCS_ENABLED=true`.",
    show: (c) => c.docsEnabled,
    // An empty value would otherwise fall back to the default; production wants an explicit choice.
    check: (value, { production, raw }) =>
      production && value === undefined && raw.DOCS_ENABLED !== undefined
        ? `"DOCS_ENABLED" must be "true" or "false"`
        : undefined,
  }),
  X_XSS_PROTECTION: setting({
    schema: z.string().default("1; mode=block"),
    doc: "`X-XSS-Protection` value; empty omits it.",
  }),
  SHUTDOWN_TIMEOUT_MS: setting({
    schema: positiveInt.max(120_000).default(10_000),
    doc: "How long SIGINT/SIGTERM waits for in-flight requests.",
  }),
};
