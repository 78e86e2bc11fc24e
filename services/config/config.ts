import { createHash, randomBytes } from "node:crypto";
import { parse as parseDotEnv } from "dotenv";
import { z } from "zod";

/** Deployment mode; production refuses unsafe settings at start-up. */
export type AppEnvName = "development" | "test" | "production";

/** One signing key of a keyring; the first key of a ring signs, all verify. */
export interface SecretKey {
  readonly kid: string;
  readonly secret: Uint8Array;
}

/** The resolved, validated settings every layer below `main.ts` reads. */
export interface Config {
  readonly appEnv: AppEnvName;
  readonly host: string;
  readonly port: number;
  readonly publicUrl: string;
  readonly dataDir: string;
  /** Embedded KV file; `undefined` opens the platform default (Deno Deploy). */
  readonly kvPath: string | undefined;
  readonly accessKeys: readonly SecretKey[];
  readonly refreshKeys: readonly SecretKey[];
  /** OWASP ASVS 3.3: short-lived access tokens limit a stolen token's value. @default 30 */
  readonly accessTokenMinutes: number;
  /** @default 7 */
  readonly refreshTokenDays: number;
  /** Session (refresh) lifetime without remember-me. @default 12 */
  readonly sessionMaxHours: number;
  /** Idle time after which a session can no longer be refreshed. @default 60 */
  readonly sessionIdleMinutes: number;
  /** Live sessions per user; a new login evicts the oldest. @default 5 */
  readonly maxSessionsPerUser: number;
  /** Also bind sessions to the client's IP prefix (/24, /64), not only its User-Agent. @default false */
  readonly sessionBindIp: boolean;
  /** Consecutive failed logins that lock an account (OWASP ASVS 2.2.1). @default 5 */
  readonly lockoutThreshold: number;
  /** How long a lock lasts. @default 15 */
  readonly lockoutMinutes: number;
  /** Lifetime of a password-reset token. @default 30 */
  readonly passwordResetExpireMinutes: number;
  /** Password maximum age; 0 turns expiry off. @default 0 */
  readonly passwordMaxAgeDays: number;
  /** Earlier passwords that may not be reused. @default 5 */
  readonly passwordHistory: number;
  /** SMTP server for mail (`smtp://user:pass@host:port` or `smtps://`); unset logs mail in development. */
  readonly smtpUrl: string | undefined;
  /** Sender address of every mail. @default "Bulwark <no-reply@localhost>" */
  readonly mailFrom: string;
  /** Pepper for API key hashes (HMAC-SHA256); unset hashes with plain SHA-256. Changing it revokes every key. */
  readonly apiKeyPepper: Uint8Array | undefined;
  /** Active API keys per user. @default 10 */
  readonly maxApiKeysPerUser: number;
  /** Rate limits as `N/unit` (API.md defaults); burst is the bucket size multiplier. */
  readonly rateLimits: RateLimitSettings;
  /** bcrypt cost; OWASP Password Storage Cheat Sheet asks for at least 10. @default 12 */
  readonly bcryptRounds: number;
  readonly corsOrigins: readonly string[];
  /** Trusted reverse-proxy hops for `X-Forwarded-For`; 0 trusts none (spoofable header). @default 0 */
  readonly trustProxy: number;
  /** JSON body cap in bytes. @default 65536 */
  readonly bodyLimitBytes: number;
  readonly tlsCertFile: string | undefined;
  readonly tlsKeyFile: string | undefined;
  readonly httpRedirectPort: number | undefined;
  readonly logLevel: LogLevelName;
  readonly docsEnabled: boolean;
  /** Value of `X-XSS-Protection`; empty string omits the header. @default "1; mode=block" */
  readonly xssProtection: string;
  /** Bounded time to finish in-flight requests on shutdown. @default 10000 */
  readonly shutdownTimeoutMs: number;
  /** Secrets generated for this run (development only), named for the warning. */
  readonly generatedSecrets: readonly string[];
  /** Largest accepted upload, counted while streaming. @default 5242880 */
  readonly uploadMaxBytes: number;
  /** Accepted file extensions; only types with a magic-byte check are possible. @default png jpg jpeg gif webp pdf zip */
  readonly uploadAllowedExtensions: readonly UploadExtension[];
  /** Where the file store keeps blobs: outside any served folder, created 0700. @default "<DATA_DIR>/uploads" */
  readonly uploadDir: string;
  /** Blob store: a directory, or Deno KV chunks where no file system is writable. @default "file" ("kv" on Deno Deploy) */
  readonly uploadStore: "file" | "kv";
  /** Per-user storage quota in bytes; 0 turns it off. @default 0 */
  readonly uploadQuotaBytes: number;
  /** clamd address, `host:port` (TCP) or an absolute Unix socket path; unset turns scanning off. */
  readonly clamavAddress: string | undefined;
  /** Bound of one scan, so a hung clamd cannot hold requests (fail closed with 503). @default 10000 */
  readonly clamavTimeoutMs: number;
  /**
   * Separate origin (e.g. `https://usercontent.example.net`) routed to this service, advertised as
   * the content URL of each upload, so user files never share the API's origin (cookies, storage).
   */
  readonly uploadsPublicOrigin: string | undefined;
}

/** File extensions an upload may have: each has a magic-byte signature to check it against. */
export const UPLOADABLE_EXTENSIONS = ["png", "jpg", "jpeg", "gif", "webp", "pdf", "zip"] as const;

/** One of {@linkcode UPLOADABLE_EXTENSIONS}. */
export type UploadExtension = typeof UPLOADABLE_EXTENSIONS[number];

/** Raw rate-limit settings; `services/rate_limiter.ts` parses them. */
export interface RateLimitSettings {
  readonly enabled: boolean;
  readonly login: string;
  readonly authenticated: string;
  readonly anonymous: string;
  readonly uploads: string;
  /** Bucket size as a multiple of the per-window limit (burst allowance). @default 1 */
  readonly burst: number;
}

/** Log levels in increasing severity. */
export type LogLevelName = "debug" | "info" | "warn" | "error";

/** Start-up refused: lists every problem found, never a secret value. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** File access used while loading config; injected so tests need no disk. */
export interface ConfigIo {
  readTextFile(path: string): string | null;
  writeSecretFile(path: string, text: string): void;
}

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

/** Minimum secret length: RFC 7518 §3.2 requires HS256 keys of at least 256 bits. */
export const MIN_SECRET_BYTES = 32;

const SECRET_NAMES = ["JWT_ACCESS_SECRET", "JWT_REFRESH_SECRET"] as const;
type SecretName = typeof SECRET_NAMES[number];

const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
/** `N/unit`, as `parseRateLimit()` in services/rate_limiter.ts reads it. */
const rate = z.string().regex(
  /^[1-9]\d{0,8}\/(second|minute|hour|day|min|s|m|h|d)$/,
  'must look like "5/minute" (unit second, minute, hour or day)',
);

const EnvSchema = z.object({
  APP_ENV: z.enum(["development", "test", "production"]).default("development"),
  HOST: z.string().min(1).default("127.0.0.1"),
  PORT: port.default(8000),
  PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  DATA_DIR: z.string().min(1).default("./data"),
  KV_PATH: z.string().min(1).optional(),
  KV_URL: z.url({ protocol: /^https?$/ }).optional(),
  DENO_DEPLOYMENT_ID: z.string().optional(),
  ACCESS_TOKEN_EXPIRE_MINUTES: positiveInt.max(24 * 60).default(30),
  REFRESH_TOKEN_EXPIRE_DAYS: positiveInt.max(365).default(7),
  SESSION_MAX_HOURS: positiveInt.max(24 * 30).default(12),
  SESSION_IDLE_MINUTES: positiveInt.max(60 * 24 * 30).default(60),
  MAX_SESSIONS_PER_USER: positiveInt.max(100).default(5),
  SESSION_BIND_IP: bool.default(false),
  LOCKOUT_THRESHOLD: positiveInt.max(100).default(5),
  LOCKOUT_MINUTES: positiveInt.max(60 * 24).default(15),
  PASSWORD_RESET_EXPIRE_MINUTES: positiveInt.max(24 * 60).default(30),
  PASSWORD_MAX_AGE_DAYS: z.coerce.number().int().min(0).max(3650).default(0),
  PASSWORD_HISTORY: z.coerce.number().int().min(0).max(24).default(5),
  SMTP_URL: z.url({ protocol: /^smtps?$/ }).optional(),
  MAIL_FROM: z.string().min(3).max(254).regex(/^[^\r\n]+$/).default("Bulwark <no-reply@localhost>"),
  MAX_API_KEYS_PER_USER: positiveInt.max(1000).default(10),
  RATE_LIMIT_ENABLED: bool.default(true),
  RATE_LIMIT_LOGIN: rate.default("5/minute"),
  RATE_LIMIT_AUTHENTICATED: rate.default("100/minute"),
  RATE_LIMIT_ANONYMOUS: rate.default("60/minute"),
  RATE_LIMIT_UPLOADS: rate.default("10/minute"),
  RATE_LIMIT_BURST: z.coerce.number().min(1).max(100).default(1),
  BCRYPT_ROUNDS: z.coerce.number().int().min(10).max(31).default(12),
  CORS_ORIGINS: z.string().default(""),
  TRUST_PROXY: z.coerce.number().int().min(0).max(10).default(0),
  BODY_LIMIT_BYTES: positiveInt.max(16 * 1024 * 1024).default(65536),
  TLS_CERT_FILE: z.string().min(1).optional(),
  TLS_KEY_FILE: z.string().min(1).optional(),
  HTTP_REDIRECT_PORT: port.optional(),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  DOCS_ENABLED: bool.optional(),
  X_XSS_PROTECTION: z.string().default("1; mode=block"),
  SHUTDOWN_TIMEOUT_MS: positiveInt.max(120_000).default(10_000),
  UPLOAD_MAX_BYTES: positiveInt.max(1024 * 1024 * 1024).default(5 * 1024 * 1024),
  UPLOAD_ALLOWED_EXTENSIONS: z.string().default(UPLOADABLE_EXTENSIONS.join(" ")),
  UPLOAD_DIR: z.string().min(1).optional(),
  UPLOAD_STORE: z.enum(["file", "kv"]).optional(),
  UPLOAD_QUOTA_BYTES: z.coerce.number().int().min(0).default(0),
  CLAMAV_ADDRESS: z.string().regex(
    /^(\/[^\0]+|[A-Za-z0-9.-]+:\d{1,5}|\[[0-9A-Fa-f:.]+\]:\d{1,5})$/,
    "must be host:port or an absolute Unix socket path",
  ).optional(),
  CLAMAV_TIMEOUT_MS: positiveInt.max(120_000).default(10_000),
  UPLOADS_PUBLIC_ORIGIN: z.url({ protocol: /^https?$/ }).optional(),
});

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
  for (const name of ["CORS_ORIGINS", "KV_URL", "SMTP_URL", "API_KEY_PEPPER"]) {
    const fromFile = readFileSetting(env, name, io, problems);
    if (fromFile !== undefined) env[name] = fromFile;
  }
  const parsed = EnvSchema.safeParse(stripEmpty(env));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`"${issue.path.join(".")}" environment variable is invalid: ${issue.message}`);
    }
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const production = e.APP_ENV === "production";

  const secretsPath = `${e.DATA_DIR}/dev-secrets.json`;
  const rings = resolveKeyrings(env, e.APP_ENV, io, secretsPath, problems);

  const corsOrigins = e.CORS_ORIGINS.split(",").map((o) => o.trim()).filter((o) => o !== "");
  for (const origin of corsOrigins) {
    if (origin === "*") {
      if (production) problems.push(`"CORS_ORIGINS" must not contain "*" in production`);
    } else if (!isOriginPattern(origin)) {
      problems.push(
        `"CORS_ORIGINS" entry "${origin}" is not an origin like https://app.example.com`,
      );
    }
  }
  if (production && e.DOCS_ENABLED === undefined && env.DOCS_ENABLED !== undefined) {
    problems.push(`"DOCS_ENABLED" must be "true" or "false"`);
  }
  if ((e.TLS_CERT_FILE === undefined) !== (e.TLS_KEY_FILE === undefined)) {
    problems.push(`"TLS_CERT_FILE" and "TLS_KEY_FILE" must be set together`);
  }
  if (e.HTTP_REDIRECT_PORT !== undefined && e.TLS_CERT_FILE === undefined) {
    problems.push(`"HTTP_REDIRECT_PORT" needs "TLS_CERT_FILE" and "TLS_KEY_FILE"`);
  }
  const uploadExtensions = e.UPLOAD_ALLOWED_EXTENSIONS.toLowerCase().split(/[\s,]+/)
    .filter((x) => x !== "");
  for (const ext of uploadExtensions) {
    // SVG, HTML, scripts and executables have no safe magic-byte check, so no setting allows them.
    if (!(UPLOADABLE_EXTENSIONS as readonly string[]).includes(ext)) {
      problems.push(
        `"UPLOAD_ALLOWED_EXTENSIONS" entry "${ext}" is not one of ${
          UPLOADABLE_EXTENSIONS.join(" ")
        }`,
      );
    }
  }
  if (
    e.UPLOADS_PUBLIC_ORIGIN !== undefined &&
    new URL(e.UPLOADS_PUBLIC_ORIGIN).origin !== e.UPLOADS_PUBLIC_ORIGIN.replace(/\/$/, "")
  ) {
    problems.push(`"UPLOADS_PUBLIC_ORIGIN" must be an origin like https://usercontent.example.net`);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const pepper = env.API_KEY_PEPPER;
  if (
    pepper !== undefined && pepper !== "" &&
    new TextEncoder().encode(pepper).byteLength < MIN_SECRET_BYTES
  ) {
    problems.push(`"API_KEY_PEPPER" must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const scheme = e.TLS_CERT_FILE === undefined ? "http" : "https";
  const publicUrl = (e.PUBLIC_URL ?? `${scheme}://localhost:${e.PORT}`).replace(/\/+$/, "");
  const kvPath = e.KV_URL ??
    e.KV_PATH ??
    (e.DENO_DEPLOYMENT_ID === undefined ? `${e.DATA_DIR}/bulwark.kv` : undefined);

  return Object.freeze({
    appEnv: e.APP_ENV,
    host: e.HOST,
    port: e.PORT,
    publicUrl,
    dataDir: e.DATA_DIR,
    kvPath,
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
    apiKeyPepper: pepper === undefined || pepper === ""
      ? undefined
      : new TextEncoder().encode(pepper),
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
    corsOrigins: Object.freeze(corsOrigins),
    trustProxy: e.TRUST_PROXY,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    tlsCertFile: e.TLS_CERT_FILE,
    tlsKeyFile: e.TLS_KEY_FILE,
    httpRedirectPort: e.HTTP_REDIRECT_PORT,
    logLevel: e.LOG_LEVEL,
    docsEnabled: e.DOCS_ENABLED ?? !production,
    xssProtection: e.X_XSS_PROTECTION,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    generatedSecrets: Object.freeze(rings.generated),
    uploadMaxBytes: e.UPLOAD_MAX_BYTES,
    uploadAllowedExtensions: Object.freeze([...new Set(uploadExtensions)] as UploadExtension[]),
    uploadDir: e.UPLOAD_DIR ?? `${e.DATA_DIR}/uploads`,
    // Deno Deploy has no writable file system, so blobs go to KV there by default.
    uploadStore: e.UPLOAD_STORE ?? (e.DENO_DEPLOYMENT_ID === undefined ? "file" : "kv"),
    uploadQuotaBytes: e.UPLOAD_QUOTA_BYTES,
    clamavAddress: e.CLAMAV_ADDRESS,
    clamavTimeoutMs: e.CLAMAV_TIMEOUT_MS,
    uploadsPublicOrigin: e.UPLOADS_PUBLIC_ORIGIN === undefined
      ? undefined
      : new URL(e.UPLOADS_PUBLIC_ORIGIN).origin,
  });
}

/** The settings safe to print (`check-config`): secrets appear only as key ids. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    APP_ENV: config.appEnv,
    HOST: config.host,
    PORT: config.port,
    PUBLIC_URL: config.publicUrl,
    DATA_DIR: config.dataDir,
    KV_PATH: config.kvPath === undefined ? "(platform default)" : redactUrl(config.kvPath),
    JWT_ACCESS_KEYS: config.accessKeys.map((k) => k.kid),
    JWT_REFRESH_KEYS: config.refreshKeys.map((k) => k.kid),
    ACCESS_TOKEN_EXPIRE_MINUTES: config.accessTokenMinutes,
    REFRESH_TOKEN_EXPIRE_DAYS: config.refreshTokenDays,
    SESSION_MAX_HOURS: config.sessionMaxHours,
    SESSION_IDLE_MINUTES: config.sessionIdleMinutes,
    MAX_SESSIONS_PER_USER: config.maxSessionsPerUser,
    SESSION_BIND_IP: config.sessionBindIp,
    LOCKOUT_THRESHOLD: config.lockoutThreshold,
    LOCKOUT_MINUTES: config.lockoutMinutes,
    PASSWORD_RESET_EXPIRE_MINUTES: config.passwordResetExpireMinutes,
    PASSWORD_MAX_AGE_DAYS: config.passwordMaxAgeDays,
    PASSWORD_HISTORY: config.passwordHistory,
    SMTP: config.smtpUrl === undefined ? "off (mail is logged)" : new URL(config.smtpUrl).host,
    MAIL_FROM: config.mailFrom,
    RATE_LIMITS: config.rateLimits,
    API_KEY_HASH: config.apiKeyPepper === undefined ? "sha256" : "hmac-sha256 (peppered)",
    MAX_API_KEYS_PER_USER: config.maxApiKeysPerUser,
    BCRYPT_ROUNDS: config.bcryptRounds,
    CORS_ORIGINS: config.corsOrigins,
    TRUST_PROXY: config.trustProxy,
    BODY_LIMIT_BYTES: config.bodyLimitBytes,
    TLS: config.tlsCertFile === undefined ? "off" : "on",
    HTTP_REDIRECT_PORT: config.httpRedirectPort ?? null,
    LOG_LEVEL: config.logLevel,
    DOCS_ENABLED: config.docsEnabled,
    UPLOAD_MAX_BYTES: config.uploadMaxBytes,
    UPLOAD_ALLOWED_EXTENSIONS: config.uploadAllowedExtensions,
    UPLOAD_DIR: config.uploadDir,
    UPLOAD_STORE: config.uploadStore,
    UPLOAD_QUOTA_BYTES: config.uploadQuotaBytes,
    CLAMAV: config.clamavAddress ?? "off",
    CLAMAV_TIMEOUT_MS: config.clamavTimeoutMs,
    UPLOADS_PUBLIC_ORIGIN: config.uploadsPublicOrigin ?? null,
  };
}

/** True for `scheme://host[:port]`, where the host may start with one `*.` label. */
export function isOriginPattern(value: string): boolean {
  return /^https?:\/\/(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/
    .test(value);
}

function redactUrl(value: string): string {
  // A KV Connect URL can carry credentials in its query string; show only its origin.
  return /^https?:/.test(value) ? new URL(value).origin : value;
}

function stripEmpty(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== "") out[k] = v;
  return out;
}

function readFileSetting(
  env: Record<string, string | undefined>,
  name: string,
  io: ConfigIo,
  problems: string[],
): string | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (file === undefined || file === "") return direct;
  if (direct !== undefined && direct !== "") {
    problems.push(`"${name}" and "${name}_FILE" must not both be set`);
    return undefined;
  }
  const text = io.readTextFile(file);
  if (text === null) {
    problems.push(`"${name}_FILE" names a file that does not exist`);
    return undefined;
  }
  return text.replace(/\r?\n$/, "");
}

interface Keyrings {
  access: SecretKey[];
  refresh: SecretKey[];
  generated: string[];
}

function resolveKeyrings(
  env: Record<string, string | undefined>,
  appEnv: AppEnvName,
  io: ConfigIo,
  secretsPath: string,
  problems: string[],
): Keyrings {
  const generated: string[] = [];
  let saved: Partial<Record<SecretName, string>> | null = null;
  const rings: Record<SecretName, SecretKey[]> = { JWT_ACCESS_SECRET: [], JWT_REFRESH_SECRET: [] };

  for (const name of SECRET_NAMES) {
    const ring = readFileSetting(env, `${name}S`, io, problems);
    const single = readFileSetting(env, name, io, problems);
    if (ring !== undefined && ring !== "") {
      rings[name] = parseKeyring(ring, `${name}S`, problems);
    } else if (single !== undefined && single !== "") {
      rings[name] = [{ kid: deriveKid(single), secret: new TextEncoder().encode(single) }];
    } else if (appEnv === "production") {
      problems.push(`"${name}" (or "${name}_FILE" or "${name}S") environment variable must be set`);
    } else {
      // Development and test generate a secret; development keeps it so tokens survive restarts.
      if (appEnv === "development") saved ??= readSavedSecrets(io, secretsPath);
      let value: string | undefined = saved?.[name];
      if (value === undefined) {
        value = randomBytes(48).toString("base64url");
        if (appEnv === "development") {
          saved = { ...saved, [name]: value };
          io.writeSecretFile(secretsPath, JSON.stringify(saved, null, 2));
        }
      }
      generated.push(name);
      rings[name] = [{ kid: deriveKid(value), secret: new TextEncoder().encode(value) }];
    }
  }

  for (const name of SECRET_NAMES) {
    for (const key of rings[name]) {
      if (key.secret.byteLength < MIN_SECRET_BYTES) {
        problems.push(`"${name}" key "${key.kid}" must be at least ${MIN_SECRET_BYTES} bytes`);
      }
    }
  }
  const refreshSecrets = new Set(rings.JWT_REFRESH_SECRET.map((k) => hex(k.secret)));
  if (rings.JWT_ACCESS_SECRET.some((k) => refreshSecrets.has(hex(k.secret)))) {
    problems.push(`"JWT_ACCESS_SECRET" and "JWT_REFRESH_SECRET" must be different secrets`);
  }
  return { access: rings.JWT_ACCESS_SECRET, refresh: rings.JWT_REFRESH_SECRET, generated };
}

function readSavedSecrets(io: ConfigIo, path: string): Partial<Record<SecretName, string>> {
  const text = io.readTextFile(path);
  if (text === null) return {};
  const parsed = z.record(z.string(), z.string()).safeParse(JSON.parse(text));
  if (!parsed.success) throw new ConfigError([`"${path}" is not a saved secrets file`]);
  return parsed.data;
}

function parseKeyring(value: string, name: string, problems: string[]): SecretKey[] {
  const keys: SecretKey[] = [];
  const kids = new Set<string>();
  for (const entry of value.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const sep = entry.indexOf(":");
    const kid = entry.slice(0, sep);
    if (sep <= 0 || !/^[A-Za-z0-9._-]{1,64}$/.test(kid)) {
      problems.push(`"${name}" entries must look like kid:secret`);
      continue;
    }
    if (kids.has(kid)) problems.push(`"${name}" repeats key id "${kid}"`);
    kids.add(kid);
    keys.push({ kid, secret: new TextEncoder().encode(entry.slice(sep + 1)) });
  }
  if (keys.length === 0) problems.push(`"${name}" holds no keys`);
  return keys;
}

/** A stable public key id: a truncated SHA-256 of the secret reveals nothing usable. */
function deriveKid(secret: string): string {
  return createHash("sha256").update(secret).digest("base64url").slice(0, 12);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
