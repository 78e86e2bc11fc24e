/**
 * The resolved configuration shape and the constants its settings refer to. A leaf module:
 * `settings.ts` (the declarations) and `config.ts` (the loader) both import it.
 *
 * @module
 */

/** Deployment modes; production refuses unsafe settings at start-up. */
export const APP_ENVS = ["development", "test", "production"] as const;

/** One of {@linkcode APP_ENVS}. */
export type AppEnvName = typeof APP_ENVS[number];

/** Log levels in increasing severity. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

/** One of {@linkcode LOG_LEVELS}. */
export type LogLevelName = typeof LOG_LEVELS[number];

/** File extensions an upload may have: each has a magic-byte signature to check it against. */
export const UPLOADABLE_EXTENSIONS = ["png", "jpg", "jpeg", "gif", "webp", "pdf", "zip"] as const;

/** One of {@linkcode UPLOADABLE_EXTENSIONS}. */
export type UploadExtension = typeof UPLOADABLE_EXTENSIONS[number];

/** Minimum secret length: RFC 7518 §3.2 requires HS256 keys of at least 256 bits. */
export const MIN_SECRET_BYTES = 32;

/** One signing key of a keyring; the first key of a ring signs, all verify. */
export interface SecretKey {
  readonly kid: string;
  readonly secret: Uint8Array;
}

/** Raw rate-limit settings; `services/limits/rate_policy.ts` parses them. */
export interface RateLimitSettings {
  readonly enabled: boolean;
  readonly login: string;
  readonly authenticated: string;
  readonly anonymous: string;
  readonly uploads: string;
  /** Bucket size as a multiple of the per-window limit (burst allowance). @default 1 */
  readonly burst: number;
}

/** One upstream identity provider ("log in with …"), resolved from `OAUTH_PROVIDERS`. */
export interface UpstreamProviderConfig {
  readonly name: string;
  readonly displayName: string;
  /** "oidc": ID token checked via JWKS; "github": plain OAuth2 and GitHub's user API. */
  readonly kind: "oidc" | "github";
  /** OIDC issuer (discovery, and the ID token's `iss`); null for GitHub. */
  readonly issuer: string | null;
  /** Explicit endpoints; null means OpenID Connect discovery from `issuer`. */
  readonly endpoints: {
    readonly authorization: string;
    readonly token: string;
    readonly userinfo: string | null;
    readonly jwks: string | null;
  } | null;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scopes: readonly string[];
}

/** ACME (RFC 8555) certificate automation. */
export interface AcmeSettings {
  readonly directoryUrl: string;
  readonly email: string;
  readonly domains: readonly string[];
  /** PEM trusted for the ACME server's HTTPS, read at start-up. */
  readonly caFile: string | undefined;
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
  /** OWASP device cookies: failures from one trusted device that lock that device. @default 5 */
  readonly lockoutDeviceThreshold: number;
  /** Lifetime of a device cookie. @default 90 */
  readonly deviceCookieDays: number;
  /** Unverified accounts cannot create API keys, grant consent or upload. @default true */
  readonly requireEmailVerification: boolean;
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
  /** Least minutes between two mails of one kind to one account (mail flooding). @default 5 */
  readonly mailAccountIntervalMinutes: number;
  /** Most mails of one kind to one account a day. @default 10 */
  readonly mailAccountDailyLimit: number;
  /** Pepper for API key hashes (HMAC-SHA256); unset hashes with plain SHA-256. Changing it revokes every key. */
  readonly apiKeyPepper: Uint8Array | undefined;
  /** Active API keys per user. @default 10 */
  readonly maxApiKeysPerUser: number;
  /** Notes one user may hold; bounds a search of one user's notes. @default 1000 */
  readonly maxNotesPerUser: number;
  /** Lifetime of OAuth2 access tokens (RFC 9700 §4.10: short). @default 10 */
  readonly oauth2AccessTokenMinutes: number;
  /** Upstream "log in with" providers. @default none */
  readonly oauthProviders: readonly UpstreamProviderConfig[];
  /** Rate limits as `N/unit` (API.md defaults); burst is the bucket size multiplier. */
  readonly rateLimits: RateLimitSettings;
  /** bcrypt cost; OWASP Password Storage Cheat Sheet asks for at least 10. @default 12 */
  readonly bcryptRounds: number;
  /** bcrypt implementation: native code when it loads, else bcryptjs workers. @default "auto" */
  readonly bcryptBackend: "auto" | "native" | "js";
  readonly corsOrigins: readonly string[];
  /** Trusted reverse-proxy hops for `X-Forwarded-For`; 0 trusts none (spoofable header). @default 0 */
  readonly trustProxy: number;
  /** The plain-HTTP listener; "deno" has no read or idle timeouts (behind a proxy). @default "node" */
  readonly httpEngine: "node" | "deno";
  /** JSON body cap in bytes. @default 65536 */
  readonly bodyLimitBytes: number;
  readonly tlsCertFile: string | undefined;
  readonly tlsKeyFile: string | undefined;
  readonly httpRedirectPort: number | undefined;
  /** Accept TLS 1.2 besides 1.3 (explicit relaxation). @default false */
  readonly tlsAllowTls12: boolean;
  /** Automatic certificates; `undefined` unless `ACME_DIRECTORY_URL` is set. */
  readonly acme: AcmeSettings | undefined;
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
  /** Collect metrics and serve `GET /metrics`. @default true */
  readonly metricsEnabled: boolean;
  /** Scraper token for `GET /metrics` (≥ 32 bytes). */
  readonly metricsToken: string | undefined;
  /** Alert receiver; unset logs alerts only. */
  readonly alertWebhookUrl: string | undefined;
  /** Signs alert deliveries (HMAC-SHA256). */
  readonly alertWebhookSecret: Uint8Array | undefined;
  /** Run intrusion-detection rules. @default true */
  readonly intrusionDetection: boolean;
  /** Rule overrides by name (`services/ops/intrusion.ts` merges them with the defaults). */
  readonly intrusionRules: Readonly<Record<string, IntrusionRuleOverride>>;
  /** Signs audit checkpoints. */
  readonly auditSigningKey: Uint8Array | undefined;
  /** Audit record lifetime. @default 365 */
  readonly auditRetentionDays: number;
}

/** One entry of `INTRUSION_RULES`, as validated (snake_case, like the JSON). */
export interface IntrusionRuleOverride {
  enabled?: boolean | undefined;
  event?: string | undefined;
  outcome?: "success" | "failure" | undefined;
  where?: Record<string, string | number | boolean> | undefined;
  key?: "ip" | "ip64" | "user" | "api_key" | "global" | undefined;
  threshold?: number | undefined;
  window_seconds?: number | undefined;
  actions?: ("alert" | "block")[] | undefined;
  block_minutes?: number | undefined;
  severity?: "critical" | "high" | "warning" | undefined;
  summary?: string | undefined;
}
