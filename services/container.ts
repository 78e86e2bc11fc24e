import { type AuditService, createAuditService } from "./audit.ts";
import { type AuthService, createAuthService } from "./auth.ts";
import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./logger.ts";
import type { PasswordHasher } from "./password_hasher.ts";
import { createPasswordPolicy, type PasswordPolicy } from "./password_policy.ts";
import { createSessionService, type SessionService } from "./sessions.ts";
import { createTokenService, type TokenService } from "./tokens.ts";
import { createUserService, type UserService } from "./users.ts";

/** The injected dependencies every service is built from. */
export interface Deps {
  readonly config: Config;
  readonly kv: Deno.Kv;
  readonly clock: Clock;
  readonly hasher: PasswordHasher;
  readonly logger: Logger;
  /** Built once per process: the zxcvbn dictionaries are large. @default a new policy */
  readonly policy?: PasswordPolicy;
}

/** Every service of one app instance. */
export interface Services {
  readonly audit: AuditService;
  readonly auth: AuthService;
  readonly policy: PasswordPolicy;
  readonly sessions: SessionService;
  readonly tokens: TokenService;
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
  const auth = createAuthService({
    clock,
    hasher,
    policy,
    tokens,
    users,
    sessions,
    audit,
    accessTtlSeconds,
    rememberMeTtlSeconds: config.refreshTokenDays * 86_400,
    sessionTtlSeconds: config.sessionMaxHours * 3600,
  });
  return { audit, auth, policy, sessions, tokens, users };
}
