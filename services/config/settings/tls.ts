/**
 * Settings of certificate automation and the TLS protocol floor (the certificate files themselves
 * are `TLS_CERT_FILE`/`TLS_KEY_FILE` in `http.ts`). Spread into `SETTINGS` by `../settings.ts`.
 *
 * @module
 */
import { z } from "zod";
import { bool, httpUrl, list, setting } from "../declaration.ts";

const DOMAIN =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Settings of ACME and the TLS protocol floor. */
export const TLS_SETTINGS = {
  TLS_ALLOW_TLS12: setting({
    schema: bool.default(false),
    doc:
      'Also accept TLS 1.2 (ECDHE + AEAD suites only, see "HTTPS and certificates"). Off: TLS 1.3 only.',
    show: (c) => c.tlsAllowTls12,
  }),
  ACME_DIRECTORY_URL: setting({
    schema: httpUrl.optional(),
    doc:
      "ACME (RFC 8555) directory, e.g. `https://acme-v02.api.letsencrypt.org/directory`: obtain and renew the certificate automatically (HTTP-01 on `HTTP_REDIRECT_PORT`).",
    showAs: "ACME",
    show: (c) =>
      c.acme === undefined ? "off" : { directory: c.acme.directoryUrl, domains: c.acme.domains },
    check: (url, { settings, production }) => {
      if (url === undefined) return undefined;
      const problems: string[] = [];
      if (settings.TLS_CERT_FILE !== undefined) {
        problems.push(`"ACME_DIRECTORY_URL" and "TLS_CERT_FILE" exclude each other`);
      }
      if (settings.ACME_EMAIL === undefined) {
        problems.push(`"ACME_DIRECTORY_URL" needs "ACME_EMAIL"`);
      }
      if ((settings.ACME_DOMAINS as string[]).length === 0) {
        problems.push(`"ACME_DIRECTORY_URL" needs "ACME_DOMAINS"`);
      }
      if (settings.HTTP_REDIRECT_PORT === undefined) {
        problems.push(`"ACME_DIRECTORY_URL" needs "HTTP_REDIRECT_PORT" (HTTP-01 challenges)`);
      }
      if (production && !url.startsWith("https:")) {
        problems.push(`"ACME_DIRECTORY_URL" must be https in production`);
      }
      return problems;
    },
  }),
  ACME_EMAIL: setting({
    schema: z.email().optional(),
    doc: "Contact address of the ACME account (expiry notices from the CA).",
  }),
  ACME_DOMAINS: setting({
    schema: list(/,/),
    defaultDoc: "—",
    doc: "Comma-separated names for the certificate; the first is its common name.",
    check: (domains) =>
      domains.filter((d) => !DOMAIN.test(d)).map((d) =>
        `"ACME_DOMAINS" entry "${d}" is not a lower-case DNS name`
      ),
  }),
  ACME_CA_FILE: setting({
    schema: z.string().min(1).optional(),
    doc:
      "PEM CA certificate trusted for the ACME server's own HTTPS (a private CA such as Pebble or step-ca).",
  }),
};
