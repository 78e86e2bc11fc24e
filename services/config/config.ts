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
      const dir = path.slice(0, path.lastIndexOf("/")) || ".";
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
      Deno.writeTextFileSync(path, text, { mode: 0o600 });
      Deno.chmodSync(path, 0o600);
    },
  };
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

  const rings = resolveKeyrings(e, e.APP_ENV, io, `${e.DATA_DIR}/dev-secrets.json`, problems);
  problems.push(...checkSettings(e, { production, raw: env }));
  if (problems.length > 0) throw new ConfigError(problems);

  const scheme = e.TLS_CERT_FILE === undefined && e.ACME_DIRECTORY_URL === undefined
    ? "http"
    : "https";
  const onDeploy = e.DENO_DEPLOYMENT_ID !== undefined;
  return Object.freeze({
    appEnv: e.APP_ENV,
    host: e.HOST,
    port: e.PORT,
    publicUrl: (e.PUBLIC_URL ?? `${scheme}://localhost:${e.PORT}`).replace(/\/+$/, ""),
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
    passwordResetExpireMinutes: e.PASSWORD_RESET_EXPIRE_MINUTES,
    passwordMaxAgeDays: e.PASSWORD_MAX_AGE_DAYS,
    passwordHistory: e.PASSWORD_HISTORY,
    smtpUrl: e.SMTP_URL,
    mailFrom: e.MAIL_FROM,
    apiKeyPepper: e.API_KEY_PEPPER === undefined
      ? undefined
      : new TextEncoder().encode(e.API_KEY_PEPPER),
    maxApiKeysPerUser: e.MAX_API_KEYS_PER_USER,
    rateLimits: Object.freeze({
      enabled: e.RATE_LIMIT_ENABLED,
      login: e.RATE_LIMIT_LOGIN,
      authenticated: e.RATE_LIMIT_AUTHENTICATED,
      anonymous: e.RATE_LIMIT_ANONYMOUS,
      uploads: e.RATE_LIMIT_UPLOADS,
      burst: e.RATE_LIMIT_BURST,
    }),
    bcryptRounds: e.BCRYPT_ROUNDS,
    corsOrigins: Object.freeze(e.CORS_ORIGINS),
    trustProxy: e.TRUST_PROXY,
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

function stripEmpty(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== "") out[k] = v;
  return out;
}
