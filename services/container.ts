import { type AccountAdminService, createAccountAdminService } from "./admin/accounts.ts";
import { type ApiKeyService, createApiKeyService } from "./api_keys/api_keys.ts";
import { type AuditLog, createAuditLog } from "./core/audit_query.ts";
import { createNoteService, type NoteService } from "./notes/notes.ts";
import { createProfileService, type ProfileService } from "./identity/profiles.ts";
import { createUserDirectory } from "./identity/user_directory.ts";
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
import { createRatePolicy, type RatePolicy, rateRules } from "./limits/rate_policy.ts";
import { createLocalRateLimiter, type LocalRateLimiter } from "./limits/local_rate_limiter.ts";
import type { VirusScanner } from "./uploads/scanner.ts";
import { createSessionService, type SessionService } from "./auth/sessions.ts";
import { createTokenService, type TokenService } from "./auth/tokens.ts";
import { createTlsService, type TlsService } from "./tls/tls.ts";
import { createUploadService, type UploadService } from "./uploads/uploads.ts";
import { createUserService, type UserService } from "./identity/users.ts";
import { createOAuth2Service, type OAuth2Service } from "./oauth2/oauth2.ts";
import { createUpstreamService, type UpstreamService } from "./oauth2/upstream/upstream.ts";
import { type BackgroundTasks, createBackgroundTasks } from "./core/background.ts";
import { createCredentialRevocation, type CredentialRevocation } from "./auth/revocation.ts";
import {
  createEmailVerificationService,
  type EmailVerificationService,
  isEmailVerified,
} from "./identity/email_verification.ts";
import { EmailUnverifiedError } from "./core/errors.ts";
import { createMailBudget } from "./mail/mail_budget.ts";
import { createRevocationFeed, type RevocationFeed } from "./core/revocation_feed.ts";
import { createCredentialView, type CredentialView } from "./auth/credential_view.ts";
import { createDeviceTrust } from "./auth/devices.ts";
import { type Alerter, createAlerter } from "./ops/alerts.ts";
import { type BlockService, createBlockService } from "./ops/blocks.ts";
import { createIntrusionDetector, type IntrusionDetector, resolveRules } from "./ops/intrusion.ts";
import { createNoopMetrics, type Metrics } from "./ops/metrics.ts";

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
  /** HTTP client for upstream identity providers. @default the global `fetch` */
  readonly fetch?: typeof globalThis.fetch;
  /** Metrics of this runtime (its own registry). @default metrics that record nothing */
  readonly metrics?: Metrics;
}

/** Security operations of one runtime: metrics, alerts, blocks and lockdown, intrusion rules. */
export interface OpsServices {
  readonly metrics: Metrics;
  readonly alerts: Alerter;
  readonly blocks: BlockService;
  readonly intrusion: IntrusionDetector;
}

/** Every service of one app instance. */
export interface Services {
  readonly accounts: AccountAdminService;
  readonly apiKeys: ApiKeyService;
  readonly audit: AuditService;
  readonly auditLog: AuditLog;
  readonly auth: AuthService;
  /** Background work (mails): awaited by tests and at shutdown. */
  readonly background: BackgroundTasks;
  readonly emailVerification: EmailVerificationService;
  readonly revocation: CredentialRevocation;
  /** Revocations from every instance; `runtime.ts` starts and stops following it. */
  readonly feed: RevocationFeed;
  /** Credentials recently found good, kept current by the feed. */
  readonly view: CredentialView;
  readonly lockout: LockoutService;
  readonly notes: NoteService;
  readonly oauth2: OAuth2Service;
  readonly upstream: UpstreamService;
  readonly passwords: PasswordService;
  readonly policy: PasswordPolicy;
  readonly profiles: ProfileService;
  readonly rates: RatePolicy;
  /** The authenticated and anonymous buckets; `runtime.ts` starts and stops reconciling them. */
  readonly localRates: LocalRateLimiter;
  readonly sessions: SessionService;
  readonly tokens: TokenService;
  /** The certificate in service (`certificateStatus()` for metrics); empty without TLS. */
  readonly tls: TlsService;
  readonly uploads: UploadService;
  readonly users: UserService;
  readonly ops: OpsServices;
}

/** Wires the services from injected dependencies; nothing is shared between two calls. */
export function createServices(deps: Deps): Services {
  const { config, kv, clock, logger, hasher, mailer } = deps;
  const metrics = deps.metrics ?? createNoopMetrics();
  const audit = createAuditService({
    kv,
    clock,
    logger,
    retentionDays: config.auditRetentionDays,
    signingKey: config.auditSigningKey,
  });
  audit.subscribe((event) => metrics.auditEvent(event));
  const background = createBackgroundTasks(logger);
  const budget = createMailBudget({
    kv,
    clock,
    audit,
    minIntervalMs: config.mailAccountIntervalMinutes * 60_000,
    perDay: config.mailAccountDailyLimit,
  });
  const policy = deps.policy ?? createPasswordPolicy();
  const accessTtlSeconds = config.accessTokenMinutes * 60;
  const tokens = createTokenService({
    accessKeys: config.accessKeys,
    refreshKeys: config.refreshKeys,
    issuer: config.publicUrl,
    accessTtlSeconds,
    clock,
  });
  const feed = createRevocationFeed({ kv, clock, logger });
  const view = createCredentialView(feed);
  const users = createUserService({ kv, clock, feed });
  const sessions = createSessionService({ kv, clock, feed, view });
  const sampler = createRefusalSampler({ kv, clock });
  const rules = rateRules(config.rateLimits);
  const localRates = createLocalRateLimiter({
    kv,
    clock,
    logger,
    rules: [rules.authenticated, rules.anonymous],
  });
  const rates = createRatePolicy({
    limiter: createRateLimiter({ kv, clock }),
    local: localRates,
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
    feed,
    view,
  });
  const revocation = createCredentialRevocation({
    sessions,
    audit,
    holders: [
      { kind: "api_keys", revokeAllForUser: (id) => apiKeys.revokeAllForUser(id) },
      // Built below (it needs auth, which needs this); only called once requests run.
      { kind: "oauth2_grants", revokeAllForUser: (id) => oauth2.revokeAllForUser(id) },
    ],
  });
  const lockout = createLockoutService({
    kv,
    clock,
    audit,
    maxFailures: config.lockoutThreshold,
    maxDeviceFailures: config.lockoutDeviceThreshold,
    lockoutMs: config.lockoutMinutes * 60_000,
  });
  const emailVerification = createEmailVerificationService({
    kv,
    clock,
    users,
    audit,
    mailer,
    budget,
    background,
    publicUrl: config.publicUrl,
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
    revocation,
    emailVerification,
    devices: createDeviceTrust({
      clock,
      // Device tokens are signed with keys derived from the refresh keyring (domain-separated).
      keys: config.refreshKeys.map((k) => k.secret),
      ttlSeconds: config.deviceCookieDays * 86_400,
    }),
    rates,
    verifyEmailOnRegister: config.requireEmailVerification,
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
    revocation,
    apiKeys: { kind: "api_keys", revokeAllForUser: (id) => apiKeys.revokeAllForUser(id) },
    mailer,
    budget,
    background,
    rates,
    publicUrl: config.publicUrl,
    resetTtlSeconds: config.passwordResetExpireMinutes * 60,
    historySize: config.passwordHistory,
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
  const alerts = createAlerter({
    url: config.alertWebhookUrl,
    secret: config.alertWebhookSecret,
    kv,
    clock,
    logger,
    metrics,
  });
  const blocks = createBlockService({ kv, clock, audit, logger, metrics, users, lockout });
  const intrusion = createIntrusionDetector({
    kv,
    clock,
    logger,
    audit,
    alerter: alerts,
    blocks,
    metrics,
    rules: config.intrusionDetection ? resolveRules(config.intrusionRules) : [],
  });
  const accounts = createAccountAdminService({
    kv,
    clock,
    users,
    directory: createUserDirectory({ kv }),
    lockout,
    revocation,
    audit,
    hasher,
    policy,
  });
  const oauth2 = createOAuth2Service({
    kv,
    clock,
    audit,
    auth,
    users,
    rates,
    accessKeys: config.accessKeys,
    issuer: config.publicUrl,
    accessTtlSeconds: config.oauth2AccessTokenMinutes * 60,
    grantTtlSeconds: config.refreshTokenDays * 86_400,
    // API.md: until verified, an account cannot grant OAuth2 consent.
    assertMayGrantConsent: (user) => {
      if (config.requireEmailVerification && !isEmailVerified(user)) {
        throw new EmailUnverifiedError("Verify your email address before allowing applications");
      }
    },
  });
  const upstream = createUpstreamService({
    kv,
    clock,
    audit,
    auth,
    users,
    providers: config.oauthProviders,
    publicUrl: config.publicUrl,
    fetch: deps.fetch ?? globalThis.fetch,
  });
  return {
    ops: { metrics, alerts, blocks, intrusion },
    accounts,
    apiKeys,
    audit,
    auditLog: createAuditLog({ kv }),
    auth,
    background,
    emailVerification,
    revocation,
    feed,
    view,
    lockout,
    notes: createNoteService({ kv, clock, audit, maxPerUser: config.maxNotesPerUser }),
    oauth2,
    upstream,
    passwords,
    policy,
    profiles: createProfileService({ users, audit }),
    rates,
    localRates,
    sessions,
    tokens,
    tls,
    uploads,
    users,
  };
}
