import { type ApiKeyService, createApiKeyService } from "./api_keys.ts";
import { type AuditService, createAuditService } from "./audit.ts";
import { type AuthService, createAuthService } from "./auth.ts";
import { type BlobStore, createFileBlobStore, createKvBlobStore } from "./blob_store.ts";
import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import { createLockoutService, type LockoutService } from "./lockout.ts";
import type { Logger } from "./logger.ts";
import type { Mailer } from "./mailer.ts";
import type { PasswordHasher } from "./password_hasher.ts";
import { createPasswordPolicy, type PasswordPolicy } from "./password_policy.ts";
import { createPasswordService, type PasswordService } from "./passwords.ts";
import { createRateLimiter, createRefusalSampler } from "./rate_limiter.ts";
import { createRatePolicy, type RatePolicy } from "./rate_policy.ts";
import type { VirusScanner } from "./scanner.ts";
import { createSessionService, type SessionService } from "./sessions.ts";
import { createTokenService, type TokenService } from "./tokens.ts";
import { createUploadService, type UploadService } from "./uploads.ts";
import { createUserService, type UserService } from "./users.ts";

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
    uploads,
    users,
  };
}
