/**
 * Settings of the runtime: mode, listen address, public URL, data and KV locations.
 * Spread into `SETTINGS` by `../settings.ts`, whose header says how to add a setting.
 *
 * @module
 */
import { z } from "zod";
import { httpUrl, port, setting } from "../declaration.ts";
import { APP_ENVS } from "../model.ts";

/** True for a name or address that only this machine reaches. */
function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function redactUrl(value: string): string {
  // A KV Connect URL can carry credentials in its query string; show only its origin.
  return /^https?:/.test(value) ? new URL(value).origin : value;
}

/** Settings of the runtime: mode, listen address, public URL, data and KV locations. */
export const RUNTIME_SETTINGS = {
  APP_ENV: setting({
    schema: z.enum(APP_ENVS).default("development"),
    doc: "`development`, `test` or `production`. Production refuses unsafe settings at start-up.",
    show: (c) => c.appEnv,
  }),
  HOST: setting({
    schema: z.string().min(1).default("127.0.0.1"),
    doc:
      "Listen address (`0.0.0.0` to listen on every interface). Beyond loopback, `APP_ENV` must be set explicitly.",
    show: (c) => c.host,
    // A forgotten APP_ENV means development (reset links in the log, docs on): never
    // let that default reach a public interface (security review #10).
    check: (host, { raw }) =>
      raw.APP_ENV === undefined && !isLoopback(String(host))
        ? `"HOST" ${
          String(host)
        } listens beyond loopback while "APP_ENV" is unset (development by default): set APP_ENV explicitly`
        : undefined,
  }),
  PORT: setting({ schema: port.default(8000), doc: "Listen port.", show: (c) => c.port }),
  PUBLIC_URL: setting({
    schema: httpUrl.optional(),
    defaultDoc: "`http(s)://localhost:PORT`",
    doc:
      "External origin, used for links and the HTTP→HTTPS redirect. Production with TLS needs an `https://` one.",
    show: (c) => c.publicUrl,
    // The redirect listener sends every client here: plain HTTP would loop, and the
    // default (localhost) would send users away from the service.
    check: (url, { production, settings }) =>
      production &&
        (settings.TLS_CERT_FILE !== undefined || settings.ACME_DIRECTORY_URL !== undefined) &&
        (url === undefined || !String(url).startsWith("https://"))
        ? `"PUBLIC_URL" must be set to an https:// origin in production with TLS`
        : undefined,
  }),
  DATA_DIR: setting({
    schema: z.string().min(1).default("./data"),
    doc: "Embedded KV file and development secrets.",
    show: (c) => c.dataDir,
  }),
  KV_PATH: setting({
    schema: z.string().min(1).optional(),
    defaultDoc: "`DATA_DIR/bulwark.kv`",
    doc: "Embedded KV file (unset on Deno Deploy = the managed KV).",
    show: (c) => c.kvPath === undefined ? "(platform default)" : redactUrl(c.kvPath),
  }),
  KV_URL: setting({
    schema: httpUrl.optional(),
    secret: true,
    doc: "A KV Connect URL: a store shared by many instances (needs `DENO_KV_ACCESS_TOKEN`).",
  }),
  DENO_DEPLOYMENT_ID: setting({
    schema: z.string().optional(),
    doc:
      "Set by Deno Deploy itself, not by hand: selects the managed KV and the `kv` upload store.",
  }),
};
