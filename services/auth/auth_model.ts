/** The authentication service's inputs, outputs and contract. */
import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { Clock } from "../core/clock.ts";
import type { EmailVerificationService } from "../identity/email_verification.ts";
import type { PasswordHasher } from "../identity/password_hasher.ts";
import type { PasswordPolicy } from "../identity/password_policy.ts";
import type { PublicUser, UserRecord, UserService } from "../identity/users.ts";
import type { RatePolicy } from "../limits/rate_policy.ts";
import type { DeviceTrust } from "./devices.ts";
import type { LockoutService } from "./lockout.ts";
import type { SessionPrincipal } from "./principal.ts";
import type { CredentialRevocation } from "./revocation.ts";
import type { SessionService } from "./sessions.ts";
import type { TokenService } from "./tokens.ts";

/** What a successful login or refresh issues (the route gives it its wire shape). */
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  /** Seconds the access token lives. */
  expiresIn: number;
  /** Seconds until the session (and so the refresh token) ends. */
  refreshExpiresIn: number;
  sessionId: string;
}

/** One session as its owner sees it. */
export interface SessionView {
  id: string;
  createdAt: string;
  lastSeenAt: string;
  ip: string;
  userAgent: string;
  rememberMe: boolean;
  /** The session of the credential asking. */
  current: boolean;
}

/** A token pair plus, for cookie sessions, the CSRF token to set as a readable cookie. */
export interface IssuedTokens {
  pair: TokenPair;
  /** Present when the refresh token must travel in a cookie. */
  csrfToken: string | null;
  /** A login's device token (OWASP device cookie) for the account; null for refreshes. */
  deviceToken: string | null;
}

/** Input of {@linkcode AuthService.register}. */
export interface RegisterInput {
  email: string;
  password: string;
  displayName: string | null;
}

/** Input of {@linkcode AuthService.login}. */
export interface LoginInput {
  email: string;
  password: string;
  rememberMe: boolean;
  /** Keep the refresh token in an HttpOnly cookie guarded by a CSRF token. */
  useCookies: boolean;
  /** Scopes asked for (OAuth2 password form); never more than the role has. */
  scope?: readonly string[] | undefined;
  /** A device token from an earlier login to this account (cookie or JSON body). */
  deviceToken?: string | undefined;
}

/** Input of {@linkcode AuthService.refresh}. */
export interface RefreshInput {
  refreshToken: string;
  /** The `X-CSRF-Token` header and the CSRF cookie, for cookie sessions. */
  csrfHeader: string | null;
  csrfCookie: string | null;
}

/** Accounts, credentials and token lifecycle. */
export interface AuthService {
  /**
   * @throws {PasswordPolicyError} listing every broken rule
   * @throws {ConflictError} when the email is taken
   */
  register(input: RegisterInput, meta: RequestMeta): Promise<PublicUser>;
  /**
   * @throws {InvalidCredentialsError} for an unknown email, a wrong password or a disabled account alike
   * @throws {AccountLockedError} | {LoginThrottledError} from the lockout policy
   */
  login(input: LoginInput, meta: RequestMeta): Promise<IssuedTokens>;
  /**
   * Checks an email and password exactly as `login` does (lockout, progressive delays,
   * dummy hash for unknown emails, audit) without starting a session: the OAuth2 login page.
   *
   * @throws {InvalidCredentialsError} | {AccountLockedError} | {LoginThrottledError}
   * @throws {RateLimitedError} when the account's login bucket is empty
   */
  verifyPassword(email: string, password: string, meta: RequestMeta): Promise<UserRecord>;
  /**
   * Spends a refresh token and returns a new pair. A spent token revokes its session.
   *
   * @throws {TokenInvalidError} | {TokenExpiredError} | {TokenRevokedError} | {CsrfError}
   */
  refresh(input: RefreshInput, meta: RequestMeta): Promise<IssuedTokens>;
  /**
   * Verifies an access token and checks blacklist and session in one round trip; the
   * principal's `passwordExpired` is judged now, from the account.
   *
   * @throws {TokenInvalidError} | {TokenExpiredError} | {TokenRevokedError}
   */
  authenticate(accessToken: string): Promise<SessionPrincipal>;
  /** Blacklists the access token and revokes its session. */
  logout(principal: SessionPrincipal, meta: RequestMeta): Promise<void>;
  /**
   * Revokes the session a cookie refresh token belongs to (cookie logout).
   *
   * @throws {CsrfError} without the matching CSRF token
   */
  logoutWithCookie(input: RefreshInput, meta: RequestMeta): Promise<void>;
  /** Revokes every credential of the principal's user: sessions, API keys, OAuth2 grants. */
  logoutAll(principal: SessionPrincipal, meta: RequestMeta): Promise<void>;
  /** The caller's live sessions, newest first, marking the one asking. */
  listSessions(principal: SessionPrincipal): Promise<SessionView[]>;
  /**
   * Revokes one of the caller's own sessions and audits it.
   *
   * @throws {NotFoundError} when it does not exist or is someone else's (no existence leak)
   */
  revokeSession(principal: SessionPrincipal, sessionId: string, meta: RequestMeta): Promise<void>;
  /** The name and lifetime of the device cookie of the account `email` (OWASP device cookies). */
  deviceCookie(email: string): { name: string; olderNames: string[]; maxAgeSeconds: number };
  /** True when `user`'s password is older than the configured maximum age. */
  isPasswordExpired(user: UserRecord): boolean;
  /**
   * Starts a fresh session for `user` (login, password change). Exposed for
   * the password service, which rotates the session id on a change.
   */
  startSession(
    user: UserRecord,
    options: { rememberMe: boolean; useCookies: boolean; scope?: readonly string[] | undefined },
    meta: RequestMeta,
  ): Promise<IssuedTokens>;
}

/** Dependencies of {@linkcode createAuthService}. */
export interface AuthDeps {
  clock: Clock;
  hasher: PasswordHasher;
  policy: PasswordPolicy;
  tokens: TokenService;
  users: UserService;
  sessions: SessionService;
  lockout: LockoutService;
  audit: AuditService;
  revocation: CredentialRevocation;
  emailVerification: EmailVerificationService;
  devices: DeviceTrust;
  /** Mail a verification link at registration (REQUIRE_EMAIL_VERIFICATION). */
  verifyEmailOnRegister: boolean;
  /** Per-account login-class buckets (login, register). */
  rates: Pick<RatePolicy, "checkAccount">;
  /** Access token lifetime. */
  accessTtlSeconds: number;
  /** Session (refresh) lifetime with remember-me. */
  rememberMeTtlSeconds: number;
  /** Session (refresh) lifetime without remember-me. */
  sessionTtlSeconds: number;
  /** A session not refreshed for this long is over (OWASP Session Management: idle timeout). */
  sessionIdleSeconds: number;
  /** Live sessions per user; the oldest is evicted. */
  maxSessionsPerUser: number;
  /** Bind sessions to the client IP prefix as well as the User-Agent. */
  sessionBindIp: boolean;
  /** Password maximum age in seconds; 0 = never expires. */
  passwordMaxAgeSeconds: number;
}
