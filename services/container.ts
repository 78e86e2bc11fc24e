import { type ApiKeyService, createApiKeyService } from "./api_keys/api_keys.ts";
import { type AuditService, createAuditService } from "./core/audit.ts";
import { type AuthService, createAuthService } from "./auth/auth.ts";
import { type BlobStore, createFileBlobStore, createKvBlobStore } from "./uploads/blob_store.ts";
import type { Clock } from "./core/clock.ts";
import type { Config } from "./config/config.ts";
import { createLockoutService, type LockoutService } from "./auth/lockout.ts";
import type { Logger } from "./core/logger.ts";
import type { Mailer } from "./mail/mailer.ts";
import type { PasswordHasher } from "./identity/password_hasher.ts";
import { createPasswordPolicy, type PasswordPolicy } from "./identity/password_policy.ts";
import { createPasswordService, type PasswordService } from "./identity/passwords.ts";
import { createRateLimiter } from "./limits/rate_limiter.ts";
import { createRefusalSampler } from "./limits/refusal_sampler.ts";
import { createRatePolicy, type RatePolicy } from "./limits/rate_policy.ts";
import type { VirusScanner } from "./uploads/scanner.ts";
import { createSessionService, type SessionService } from "./auth/sessions.ts";
import { createTokenService, type TokenService } from "./auth/tokens.ts";
import { createTlsService, type TlsService } from "./tls/tls.ts";
import { createUploadService, type UploadService } from "./uploads/uploads.ts";
import { createUserService, type UserService } from "./identity/users.ts";

/** The injected dependencies every service is built from. */
export interface Deps {
  readonly config: Config;
  readonly kv: Deno.Kv;
  readonly clock: Clock;
  readonly hasher: PasswordHasher;
  readonly mailer: Mailer;
  readonly logger: Logger;
  /** Built once per process: the zxcvbn dictionaries are large. @default a new policy */
  readonly policy?: PasswordPolicy;
  /**
   * Upload virus scanner; `null` turns scanning off. The caller owns it and closes it.
   * @default none: `main.ts` builds a clamd client when `CLAMAV_ADDRESS` is set
   */
  readonly scanner?: VirusScanner | null;
  /** Where upload bytes go. @default the `UPLOAD_STORE` store (`UPLOAD_DIR`, or Deno KV) */
  readonly blobStore?: BlobStore;
}

/** Every service of one app instance. */
export interface Services {
  readonly apiKeys: ApiKeyService;
  readonly audit: AuditService;
  readonly auth: AuthService;
  readonly lockout: LockoutService;
  readonly passwords: PasswordService;
  readonly policy: PasswordPolicy;
  readonly rates: RatePolicy;
  readonly sessions: SessionService;
  readonly tokens: TokenService;
  /** The certificate in service (`certificateStatus()` for metrics); empty without TLS. */
  readonly tls: TlsService;
  readonly uploads: UploadService;
  readonly users: UserService;
}

/** Wires the services from injected dependencies; nothing is shared between two calls. */
export function createServices(deps: Deps): Services {
  const { config, kv, clock, logger, hasher } = deps;
  const audit = createAuditService({ kv, clock, logger });
  const policy = deps.policy ?? createPasswordPolicy();
  const accessTtlSeconds = config.accessTokenMinutes * 60;
  const tokens = createTokenService({
    accessKeys: config.accessKeys,
    refreshKeys: config.refreshKeys,
    issuer: config.publicUrl,
    accessTtlSeconds,
    clock,
  });
  const users = createUserService({ kv, clock });
  const sessions = createSessionService({ kv, clock });
  const lockout = createLockoutService({
    kv,
    clock,
    audit,
    maxFailures: config.lockoutThreshold,
    lockoutMs: config.lockoutMinutes * 60_000,
  });
  const auth = createAuthService({
    clock,
    hasher,
    policy,
    tokens,
    users,
    sessions,
    lockout,
    audit,
    accessTtlSeconds,
    rememberMeTtlSeconds: config.refreshTokenDays * 86_400,
    sessionTtlSeconds: config.sessionMaxHours * 3600,
    sessionIdleSeconds: config.sessionIdleMinutes * 60,
    maxSessionsPerUser: config.maxSessionsPerUser,
    sessionBindIp: config.sessionBindIp,
    passwordMaxAgeSeconds: config.passwordMaxAgeDays * 86_400,
  });
  const passwords = createPasswordService({
    kv,
    clock,
    hasher,
    policy,
    users,
    sessions,
    lockout,
    auth,
    audit,
    mailer: deps.mailer,
    logger,
    publicUrl: config.publicUrl,
    resetTtlSeconds: config.passwordResetExpireMinutes * 60,
    historySize: config.passwordHistory,
  });
  const sampler = createRefusalSampler({ kv, clock });
  const rates = createRatePolicy({
    limiter: createRateLimiter({ kv, clock }),
    sampler,
    audit,
    settings: config.rateLimits,
  });
  const apiKeys = createApiKeyService({
    kv,
    clock,
    audit,
    sampler,
    logger,
    pepper: config.apiKeyPepper,
    maxActiveKeys: config.maxApiKeysPerUser,
  });
  const uploads = createUploadService({
    kv,
    clock,
    audit,
    logger,
    store: deps.blobStore ??
      (config.uploadStore === "kv"
        ? createKvBlobStore({ kv, clock })
        : createFileBlobStore({ dir: config.uploadDir, clock })),
    scanner: deps.scanner ?? null,
    maxBytes: config.uploadMaxBytes,
    allowedExtensions: config.uploadAllowedExtensions,
    quotaBytes: config.uploadQuotaBytes,
  });
  const tls = createTlsService({ clock, logger, refuseExpired: config.appEnv === "production" });
  return {
    apiKeys,
    audit,
    auth,
    lockout,
    passwords,
    policy,
    rates,
    sessions,
    tokens,
    tls,
    uploads,
    users,
  };
}
