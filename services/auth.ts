import type { AuditService, RequestMeta } from "./audit.ts";
import type { Clock } from "./clock.ts";
import { InvalidCredentialsError, TokenInvalidError, TokenRevokedError } from "./errors.ts";
import type { PasswordHasher } from "./password_hasher.ts";
import type { PasswordPolicy } from "./password_policy.ts";
import { grantScopes, type Permission, type Role } from "./permissions.ts";
import type { SessionRecord, SessionService } from "./sessions.ts";
import type { TokenService } from "./tokens.ts";
import { normalizeEmail, type PublicUser, toPublicUser, type UserService } from "./users.ts";

/** The authenticated caller, as routes and guards see it. */
export interface Principal {
  kind: "user";
  userId: string;
  sessionId: string;
  jti: string;
  role: Role;
  /** What this credential may do: the token's scopes. */
  scopes: ReadonlySet<string>;
  expiresAt: Date;
}

/** The body of a successful login or refresh. */
export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: "bearer";
  expires_in: number;
  refresh_expires_in: number;
  session_id: string;
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
  /** Scopes asked for (OAuth2 password form); never more than the role has. */
  scope?: readonly string[] | undefined;
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
   */
  login(input: LoginInput, meta: RequestMeta): Promise<TokenPair>;
  /**
   * Spends a refresh token and returns a new pair. A spent token revokes its session.
   *
   * @throws {TokenInvalidError} | {TokenExpiredError} | {TokenRevokedError}
   */
  refresh(refreshToken: string, meta: RequestMeta): Promise<TokenPair>;
  /**
   * Verifies an access token and checks blacklist and session in one round trip.
   *
   * @throws {TokenInvalidError} | {TokenExpiredError} | {TokenRevokedError}
   */
  authenticate(accessToken: string): Promise<Principal>;
  /** Blacklists the access token and revokes its session. */
  logout(principal: Principal, meta: RequestMeta): Promise<void>;
  /** Revokes every session of the principal's user; returns how many. */
  logoutAll(principal: Principal, meta: RequestMeta): Promise<number>;
}

/** Dependencies of {@linkcode createAuthService}. */
export interface AuthDeps {
  clock: Clock;
  hasher: PasswordHasher;
  policy: PasswordPolicy;
  tokens: TokenService;
  users: UserService;
  sessions: SessionService;
  audit: AuditService;
  /** Access token lifetime. */
  accessTtlSeconds: number;
  /** Session (refresh) lifetime with remember-me. */
  rememberMeTtlSeconds: number;
  /** Session (refresh) lifetime without remember-me. */
  sessionTtlSeconds: number;
}

/** Creates the authentication service. */
export function createAuthService(deps: AuthDeps): AuthService {
  const { clock, hasher, tokens, users, sessions, audit } = deps;

  async function issuePair(
    session: SessionRecord,
    role: Role,
    refreshToken: string,
    now: Date,
  ): Promise<TokenPair> {
    const access = await tokens.signAccess({
      userId: session.user_id,
      sessionId: session.id,
      role,
      scope: grantScopes(role, session.scope),
    }, now);
    return {
      access_token: access.token,
      refresh_token: refreshToken,
      token_type: "bearer",
      expires_in: deps.accessTtlSeconds,
      refresh_expires_in: Math.max(
        0,
        Math.floor((new Date(session.expires_at).getTime() - now.getTime()) / 1000),
      ),
      session_id: session.id,
    };
  }

  return {
    async register(input, meta) {
      const email = normalizeEmail(input.email);
      deps.policy.assert(input.password, [email, input.displayName ?? ""]);
      const passwordHash = await hasher.hash(input.password);
      const user = await users.createUser({ email, displayName: input.displayName, passwordHash });
      await audit.record({ type: "user.registered", outcome: "success", userId: user.id, meta });
      return toPublicUser(user);
    },

    async login(input, meta) {
      const now = clock.now();
      const user = await users.getUserByEmail(input.email);
      // Unknown emails still pay for one bcrypt run at the same cost (no timing oracle).
      const ok = await hasher.verify(
        input.password,
        user?.password_hash ?? await hasher.dummyHash(),
      );
      if (user === null || !ok || user.disabled) {
        const reason = user === null
          ? "unknown_email"
          : !ok
          ? "wrong_password"
          : "account_disabled";
        await audit.record({
          type: "auth.login",
          outcome: "failure",
          userId: user?.id,
          meta,
          details: { reason },
        });
        throw new InvalidCredentialsError("Invalid email or password");
      }
      if (hasher.needsRehash(user.password_hash)) {
        const upgraded = await hasher.hash(input.password);
        await users.updateUser(user.id, (u) => ({ ...u, password_hash: upgraded }));
      }
      const rememberMe = input.rememberMe;
      const ttl = rememberMe ? deps.rememberMeTtlSeconds : deps.sessionTtlSeconds;
      const expiresAt = new Date(now.getTime() + ttl * 1000);
      const scope = grantScopes(user.role, input.scope);
      let refreshToken = "";
      const session = await sessions.createSession(
        { userId: user.id, rememberMe, scope, meta, expiresAt },
        async (sessionId) => {
          const signed = await tokens.signRefresh({ userId: user.id, sessionId, expiresAt }, now);
          refreshToken = signed.token;
          return signed.jti;
        },
      );
      await audit.record({
        type: "auth.login",
        outcome: "success",
        userId: user.id,
        meta,
        details: { session_id: session.id, remember_me: rememberMe },
      });
      return await issuePair(session, user.role, refreshToken, now);
    },

    async refresh(refreshToken, meta) {
      const now = clock.now();
      const claims = await tokens.verifyRefresh(refreshToken);
      const entry = await sessions.getEntry(claims.sid);
      if (entry.value === null || entry.versionstamp === null) {
        throw new TokenRevokedError("The session has ended");
      }
      const session = entry.value;
      if (session.user_id !== claims.sub) throw new TokenInvalidError("Token is invalid");
      if (session.refresh_jti !== claims.jti) {
        // A refresh token of this session that is not the current one was spent
        // before: someone holds a copy. Revoke the whole session (RFC 9700 §4.14.2).
        await sessions.revokeSession(session.id);
        await audit.record({
          type: "auth.refresh_reuse_detected",
          outcome: "failure",
          userId: session.user_id,
          meta,
          details: { session_id: session.id },
        });
        throw new TokenRevokedError("The refresh token was already used; the session is revoked");
      }
      if (new Date(session.expires_at) <= now) throw new TokenRevokedError("The session has ended");
      const user = await users.getUser(session.user_id);
      if (user === null || user.disabled) {
        await sessions.revokeSession(session.id);
        throw new TokenRevokedError("The session has ended");
      }
      const expiresAt = new Date(session.expires_at);
      const next = await tokens.signRefresh(
        { userId: user.id, sessionId: session.id, expiresAt },
        now,
      );
      // First commit wins; a concurrent refresh with the same token loses here.
      if (await sessions.rotate(entry, next.jti, meta) === "lost_race") {
        throw new TokenRevokedError("The refresh token was already used");
      }
      await audit.record({
        type: "auth.refresh",
        outcome: "success",
        userId: user.id,
        meta,
        details: { session_id: session.id },
      });
      return await issuePair(session, user.role, next.token, now);
    },

    async authenticate(accessToken) {
      const claims = await tokens.verifyAccess(accessToken);
      const { revoked, session } = await sessions.checkAccess(claims.jti, claims.sid);
      if (revoked || session === null || session.user_id !== claims.sub) {
        throw new TokenRevokedError("The token has been revoked");
      }
      return {
        kind: "user",
        userId: claims.sub,
        sessionId: claims.sid,
        jti: claims.jti,
        role: claims.role,
        scopes: new Set<Permission | string>(claims.scope),
        expiresAt: new Date(claims.exp * 1000),
      };
    },

    async logout(principal, meta) {
      await sessions.revokeAccessToken(principal.jti, principal.expiresAt);
      await sessions.revokeSession(principal.sessionId);
      await audit.record({
        type: "auth.logout",
        outcome: "success",
        userId: principal.userId,
        meta,
        details: { session_id: principal.sessionId },
      });
    },

    async logoutAll(principal, meta) {
      await sessions.revokeAccessToken(principal.jti, principal.expiresAt);
      const count = await sessions.revokeAllForUser(principal.userId);
      await audit.record({
        type: "auth.logout_all",
        outcome: "success",
        userId: principal.userId,
        meta,
        details: { sessions_revoked: count },
      });
      return count;
    },
  };
}
