/**
 * Loads the configuration: reads the environment (and `.env` in development), validates it
 * against the declarations in `settings.ts`, applies defaults once and returns a frozen
 * {@linkcode Config}. Settings are declared in `settings.ts`; see its header to add one.
 *
 * @module
 */
import { parse as parseDotEnv } from "dotenv";
import type { Config, UploadExtension } from "./model.ts";
import { checkSettings, ENV_SCHEMA, fileSettingNames, settingEntries } from "./settings.ts";
import { ConfigError, type ConfigIo, readFileSetting, resolveKeyrings } from "./secrets.ts";
import { parseProviders } from "./providers.ts";

export {
  type AcmeSettings,
  type AppEnvName,
  type Config,
  type LogLevelName,
  MIN_SECRET_BYTES,
  type RateLimitSettings,
  type SecretKey,
  UPLOADABLE_EXTENSIONS,
  type UploadExtension,
  type UpstreamProviderConfig,
} from "./model.ts";
export { isOriginPattern } from "./settings.ts";
export { ConfigError, type ConfigIo } from "./secrets.ts";

/** Reads files from the local disk; secrets are written with mode 0600. */
export function createDiskConfigIo(): ConfigIo {
  return {
    readTextFile(path) {
      try {
        return Deno.readTextFileSync(path);
      } catch (error) {
        // A missing file is a valid empty state (no .env, no saved dev secrets).
        if (error instanceof Deno.errors.NotFound) return null;
        throw error;
      }
    },
    writeSecretFile(path, text) {
      const dir = parentDir(path);
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
      Deno.writeTextFileSync(path, text, { mode: 0o600 });
      Deno.chmodSync(path, 0o600);
    },
    writableProblem(path, kind) {
      const dir = kind === "dir" ? path : parentDir(path);
      if (Deno.permissions.querySync({ name: "write", path }).state !== "granted") {
        return `the process may not write there (it needs --allow-write for ${dir})`;
      }
      const existing = nearestExistingDir(dir);
      // Only a folder the process may write can be probed; below it, the grant decides.
      if (Deno.permissions.querySync({ name: "write", path: existing }).state !== "granted") {
        return null;
      }
      try {
        Deno.removeSync(Deno.makeTempFileSync({ dir: existing, prefix: ".bulwark-probe-" }));
        return null;
      } catch (error) {
        if (error instanceof Deno.errors.PermissionDenied) {
          return `the file system refuses writes to ${existing}`;
        }
        throw error;
      }
    },
  };
}

function parentDir(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
}

/** The folder itself or its closest ancestor that exists (the one a mkdir would write into). */
function nearestExistingDir(dir: string): string {
  let current = dir;
  for (;;) {
    try {
      if (Deno.statSync(current).isDirectory) return current;
    } catch (error) {
      // A missing folder is made later; its nearest existing ancestor decides.
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    const parent = parentDir(current);
    if (parent === current) return current;
    current = parent;
  }
}

/** Every location the service will write, by the setting that names it. */
function writableLocations(
  e: {
    APP_ENV: string;
    DATA_DIR: string;
    KV_PATH?: string | undefined;
    KV_URL?: string | undefined;
    UPLOAD_DIR?: string | undefined;
    UPLOAD_STORE?: string | undefined;
  },
  onDeploy: boolean,
): Array<{ name: string; path: string; kind: "file" | "dir" }> {
  const out: Array<{ name: string; path: string; kind: "file" | "dir" }> = [];
  if (e.KV_URL === undefined && !onDeploy) {
    const kvPath = e.KV_PATH ?? `${e.DATA_DIR}/bulwark.kv`;
    // Deno's own in-memory store writes nothing.
    if (kvPath !== ":memory:") {
      out.push({
        name: e.KV_PATH === undefined ? "DATA_DIR" : "KV_PATH",
        path: kvPath,
        kind: "file",
      });
    }
  }
  if ((e.UPLOAD_STORE ?? (onDeploy ? "kv" : "file")) === "file") {
    const dir = e.UPLOAD_DIR ?? `${e.DATA_DIR}/uploads`;
    out.push({
      name: e.UPLOAD_DIR === undefined ? "DATA_DIR" : "UPLOAD_DIR",
      path: dir,
      kind: "dir",
    });
  }
  if (e.APP_ENV === "development") {
    out.push({ name: "DATA_DIR", path: `${e.DATA_DIR}/dev-secrets.json`, kind: "file" });
  }
  return out;
}

/** Options of {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /** @default disk access via Deno APIs */
  io?: ConfigIo;
}

/**
 * Reads, validates and freezes every setting. Secrets may come from
 * `<NAME>` or `<NAME>_FILE`; development generates and persists missing ones.
 *
 * @throws {ConfigError} naming every problem at once
 */
export function loadConfig(
  rawEnv: Readonly<Record<string, string | undefined>>,
  options: LoadConfigOptions = {},
): Config {
  const io = options.io ?? createDiskConfigIo();
  const problems: string[] = [];
  let env: Record<string, string | undefined> = { ...rawEnv };
  const appEnvGuess = env.APP_ENV ?? "development";
  if (appEnvGuess === "development") {
    // .env is a development convenience only; production reads the real environment.
    const dotEnv = io.readTextFile(".env");
    if (dotEnv !== null) env = { ...parseDotEnv(dotEnv), ...env };
  }
  for (const name of fileSettingNames()) {
    const fromFile = readFileSetting(env, name, io, problems);
    if (fromFile !== undefined) env[name] = fromFile;
  }
  const parsed = ENV_SCHEMA.safeParse(stripEmpty(env));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`"${issue.path.join(".")}" environment variable is invalid: ${issue.message}`);
    }
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const production = e.APP_ENV === "production";
  const onDeploy = e.DENO_DEPLOYMENT_ID !== undefined;
  // Checked before anything is written (development secrets), so a location the
  // process may not write is one clear line, never a stack trace at start-up.
  for (const { name, path, kind } of writableLocations(e, onDeploy)) {
    const problem = io.writableProblem?.(path, kind);
    if (problem !== null && problem !== undefined) {
      problems.push(`"${name}" location ${path} cannot be written: ${problem}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const rings = resolveKeyrings(e, e.APP_ENV, io, `${e.DATA_DIR}/dev-secrets.json`, problems);
  problems.push(...checkSettings(e, { production, raw: env }));
  const oauthProviders = parseProviders(e.OAUTH_PROVIDERS, io, production, problems);
  if (problems.length > 0) throw new ConfigError(problems);

  const scheme = e.TLS_CERT_FILE === undefined && e.ACME_DIRECTORY_URL === undefined
    ? "http"
    : "https";
  return Object.freeze({
    appEnv: e.APP_ENV,
    host: e.HOST,
    port: e.PORT,
    publicUrl: (e.PUBLIC_URL ?? `${scheme}://localhost:${e.PORT}`).replace(/(?<!\/)\/+$/, ""),
    dataDir: e.DATA_DIR,
    kvPath: e.KV_URL ?? e.KV_PATH ?? (onDeploy ? undefined : `${e.DATA_DIR}/bulwark.kv`),
    accessKeys: Object.freeze(rings.access),
    refreshKeys: Object.freeze(rings.refresh),
    accessTokenMinutes: e.ACCESS_TOKEN_EXPIRE_MINUTES,
    refreshTokenDays: e.REFRESH_TOKEN_EXPIRE_DAYS,
    sessionMaxHours: e.SESSION_MAX_HOURS,
    sessionIdleMinutes: e.SESSION_IDLE_MINUTES,
    maxSessionsPerUser: e.MAX_SESSIONS_PER_USER,
    sessionBindIp: e.SESSION_BIND_IP,
    lockoutThreshold: e.LOCKOUT_THRESHOLD,
    lockoutMinutes: e.LOCKOUT_MINUTES,
    lockoutDeviceThreshold: e.LOCKOUT_DEVICE_THRESHOLD,
    deviceCookieDays: e.DEVICE_COOKIE_DAYS,
    requireEmailVerification: e.REQUIRE_EMAIL_VERIFICATION,
    passwordResetExpireMinutes: e.PASSWORD_RESET_EXPIRE_MINUTES,
    passwordMaxAgeDays: e.PASSWORD_MAX_AGE_DAYS,
    passwordHistory: e.PASSWORD_HISTORY,
    smtpUrl: e.SMTP_URL,
    mailFrom: e.MAIL_FROM,
    mailAccountIntervalMinutes: e.MAIL_ACCOUNT_INTERVAL_MINUTES,
    mailAccountDailyLimit: e.MAIL_ACCOUNT_DAILY_LIMIT,
    apiKeyPepper: e.API_KEY_PEPPER === undefined
      ? undefined
      : new TextEncoder().encode(e.API_KEY_PEPPER),
    maxApiKeysPerUser: e.MAX_API_KEYS_PER_USER,
    maxNotesPerUser: e.MAX_NOTES_PER_USER,
    oauth2AccessTokenMinutes: e.OAUTH2_ACCESS_TOKEN_MINUTES,
    oauthProviders: Object.freeze(oauthProviders),
    rateLimits: Object.freeze({
      enabled: e.RATE_LIMIT_ENABLED,
      login: e.RATE_LIMIT_LOGIN,
      authenticated: e.RATE_LIMIT_AUTHENTICATED,
      anonymous: e.RATE_LIMIT_ANONYMOUS,
      uploads: e.RATE_LIMIT_UPLOADS,
      burst: e.RATE_LIMIT_BURST,
    }),
    bcryptRounds: e.BCRYPT_ROUNDS,
    bcryptBackend: e.BCRYPT_BACKEND,
    corsOrigins: Object.freeze(e.CORS_ORIGINS),
    trustProxy: e.TRUST_PROXY,
    httpEngine: e.HTTP_ENGINE,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    tlsCertFile: e.TLS_CERT_FILE,
    tlsKeyFile: e.TLS_KEY_FILE,
    httpRedirectPort: e.HTTP_REDIRECT_PORT,
    tlsAllowTls12: e.TLS_ALLOW_TLS12,
    // checkSettings() made sure email and domains come with the directory.
    acme: e.ACME_DIRECTORY_URL === undefined ? undefined : Object.freeze({
      directoryUrl: e.ACME_DIRECTORY_URL,
      email: e.ACME_EMAIL ?? "",
      domains: Object.freeze([...e.ACME_DOMAINS]),
      caFile: e.ACME_CA_FILE,
    }),
    logLevel: e.LOG_LEVEL,
    docsEnabled: e.DOCS_ENABLED ?? !production,
    xssProtection: e.X_XSS_PROTECTION,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    generatedSecrets: Object.freeze(rings.generated),
    uploadMaxBytes: e.UPLOAD_MAX_BYTES,
    // checkSettings() refused any extension outside UPLOADABLE_EXTENSIONS.
    uploadAllowedExtensions: Object.freeze(
      [...new Set(e.UPLOAD_ALLOWED_EXTENSIONS)] as UploadExtension[],
    ),
    uploadDir: e.UPLOAD_DIR ?? `${e.DATA_DIR}/uploads`,
    // Deno Deploy has no writable file system, so blobs go to KV there by default.
    uploadStore: e.UPLOAD_STORE ?? (onDeploy ? "kv" : "file"),
    uploadQuotaBytes: e.UPLOAD_QUOTA_BYTES,
    clamavAddress: e.CLAMAV_ADDRESS,
    clamavTimeoutMs: e.CLAMAV_TIMEOUT_MS,
    uploadsPublicOrigin: e.UPLOADS_PUBLIC_ORIGIN === undefined
      ? undefined
      : new URL(e.UPLOADS_PUBLIC_ORIGIN).origin,
    metricsEnabled: e.METRICS_ENABLED,
    metricsToken: e.METRICS_TOKEN,
    alertWebhookUrl: e.ALERT_WEBHOOK_URL,
    alertWebhookSecret: bytesOf(e.ALERT_WEBHOOK_SECRET),
    intrusionDetection: e.INTRUSION_DETECTION,
    intrusionRules: Object.freeze(e.INTRUSION_RULES ?? {}),
    auditSigningKey: bytesOf(e.AUDIT_SIGNING_KEY),
    auditRetentionDays: e.AUDIT_RETENTION_DAYS,
  });
}

/**
 * The settings safe to print (`check-config`): each declaration's `show`, in declaration order.
 * Secrets appear only as key ids, hosts or modes.
 */
export function describeConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, s] of settingEntries()) {
    if (s.show !== undefined) out[s.showAs ?? name] = s.show(config);
  }
  return out;
}

function bytesOf(value: string | undefined): Uint8Array | undefined {
  return value === undefined ? undefined : new TextEncoder().encode(value);
}

function stripEmpty(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== "") out[k] = v;
  return out;
}
