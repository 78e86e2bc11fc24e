import type { AuditEventType } from "../core/audit_events.ts";
import type { RequestMeta } from "../core/audit.ts";
import {
  CsrfError,
  InvalidCredentialsError,
  TokenExpiredError,
  TokenInvalidError,
  TokenRevokedError,
} from "../core/errors.ts";
import { randomSecret, sha256, timingSafeEqual } from "../core/crypto.ts";
import { grantScopes } from "./permissions.ts";
import { sessionFingerprint, type SessionRecord } from "./sessions.ts";
import { clientBucketKey } from "../limits/rate_policy.ts";
import { normalizeEmail, toPublicUser, type UserRecord } from "../identity/users.ts";
import type { AuthDeps, AuthService, RefreshInput, TokenPair } from "./auth_model.ts";
import type { AccessClaims } from "./tokens.ts";

export type { ApiKeyPrincipal, Principal, SessionPrincipal } from "./principal.ts";
export type {
  AuthDeps,
  AuthService,
  IssuedTokens,
  LoginInput,
  RefreshInput,
  RegisterInput,
  SessionView,
  TokenPair,
} from "./auth_model.ts";

/** Creates the authentication service. */
export function createAuthService(deps: AuthDeps): AuthService {
  const { clock, hasher, tokens, users, sessions, audit, lockout } = deps;

  function passwordExpired(user: UserRecord, now: Date): boolean {
    if (deps.passwordMaxAgeSeconds <= 0) return false;
    const age = (now.getTime() - Date.parse(user.password_changed_at)) / 1000;
    return age >= deps.passwordMaxAgeSeconds;
  }

  // A token's scopes as a set, made once per verified token (its claims object is
  // remembered by the token service and frozen, so the set can be shared read-only).
  const scopeSets = new WeakMap<AccessClaims, ReadonlySet<string>>();
  function scopeSet(claims: AccessClaims): ReadonlySet<string> {
    let set = scopeSets.get(claims);
    if (set === undefined) scopeSets.set(claims, set = new Set(claims.scope));
    return set;
  }

  async function issuePair(
    session: SessionRecord,
    user: UserRecord,
    refreshToken: string,
    now: Date,
  ): Promise<TokenPair> {
    const expired = passwordExpired(user, now);
    const access = await tokens.signAccess({
      userId: user.id,
      sessionId: session.id,
      role: user.role,
      // An expired password leaves the token with no scope: it may only change the password.
      scope: expired ? [] : grantScopes(user.role, session.scope),
      passwordExpired: expired,
    }, now);
    return {
      accessToken: access.token,
      refreshToken,
      expiresIn: deps.accessTtlSeconds,
      refreshExpiresIn: Math.max(
        0,
        Math.floor((new Date(session.expires_at).getTime() - now.getTime()) / 1000),
      ),
      sessionId: session.id,
    };
  }

  async function evictOldSessions(userId: string, meta: RequestMeta): Promise<void> {
    const live = (await sessions.listForUser(userId))
      .sort((a, b) => a.created_at.localeCompare(b.created_at));
    // Make room for the session about to be created.
    const excess = live.length - (deps.maxSessionsPerUser - 1);
    for (const session of live.slice(0, Math.max(0, excess))) {
      await sessions.revokeSession(session.id);
      await audit.record({
        type: "session.evicted",
        outcome: "success",
        userId,
        meta,
        details: { session_id: session.id, max_sessions: deps.maxSessionsPerUser },
      });
    }
  }

  async function endSession(
    session: SessionRecord,
    type: AuditEventType,
    meta: RequestMeta,
  ): Promise<void> {
    await sessions.revokeSession(session.id);
    await audit.record({
      type,
      outcome: "failure",
      userId: session.user_id,
      meta,
      details: { session_id: session.id },
    });
  }

  /**
   * Double submit: the header must equal the CSRF cookie. A cross-site page can
   * set neither, so this alone stops forged requests — and it runs before reuse
   * detection, so a forgery cannot get a session revoked.
   */
  function checkCsrfDoubleSubmit(session: SessionRecord, input: RefreshInput): void {
    if (session.csrf_hash === null) return;
    const header = input.csrfHeader ?? "";
    if (header === "" || input.csrfCookie === null || !timingSafeEqual(header, input.csrfCookie)) {
      throw new CsrfError("The X-CSRF-Token header must match the CSRF cookie");
    }
  }

  /** The CSRF token must also be the one issued to this session (checked after reuse detection). */
  function checkCsrfBinding(session: SessionRecord, input: RefreshInput): void {
    if (session.csrf_hash === null) return;
    if (!timingSafeEqual(sha256(input.csrfHeader ?? ""), session.csrf_hash)) {
      throw new CsrfError("The X-CSRF-Token header does not belong to this session");
    }
  }

  function checkCsrf(session: SessionRecord, input: RefreshInput): void {
    checkCsrfDoubleSubmit(session, input);
    checkCsrfBinding(session, input);
  }

  /**
   * The password check of every login form: per-account bucket, lockout and progressive
   * delays, a dummy hash for unknown emails, audit. Returns the (rehashed) account.
   */
  async function checkPassword(
    rawEmail: string,
    password: string,
    deviceToken: string | undefined,
    meta: RequestMeta,
  ): Promise<{ user: UserRecord; email: string; deviceId: string | null }> {
    const email = normalizeEmail(rawEmail);
    const deviceId = deviceToken === undefined ? null : deps.devices.verify(deviceToken, email);
    const subject = { account: email, deviceId };
    await deps.rates.checkAccount(
      deviceId === null ? "login" : "login_device",
      deviceId ?? email,
      meta,
    );
    // Known and unknown emails go through the same lockout, so it reveals nothing.
    await lockout.begin(subject, meta);
    // Every login waits for the dummy hash (made once, warmed at start-up), known
    // email or not, so even the first logins after a start reveal nothing by timing.
    const dummy = await hasher.dummyHash();
    const user = await users.getUserByEmail(email);
    // Unknown emails still pay for one bcrypt run at the same cost (no timing oracle).
    const ok = await hasher.verify(password, user?.password_hash ?? dummy);
    if (user === null || !ok || user.disabled) {
      const reason = user === null ? "unknown_email" : !ok ? "wrong_password" : "account_disabled";
      await lockout.recordFailure(subject, meta);
      await audit.record({
        type: "auth.login",
        outcome: "failure",
        userId: user?.id,
        meta,
        details: { reason, trusted_device: deviceId !== null },
        // A guessing run from one network is one record a minute per account, with its count.
        // The key holds a digest: emails typed by attackers are never stored.
        sample: { key: `${clientBucketKey(meta.ip)}|${sha256(email).slice(0, 16)}` },
      });
      throw new InvalidCredentialsError("Invalid email or password");
    }
    await lockout.recordSuccess(subject);
    let current = user;
    if (hasher.needsRehash(user.password_hash)) {
      const upgraded = await hasher.hash(password);
      current = await users.updateUser(user.id, (u) => ({ ...u, password_hash: upgraded })) ??
        user;
    }
    return { user: current, email, deviceId };
  }

  const service: AuthService = {
    isPasswordExpired(user) {
      return passwordExpired(user, clock.now());
    },

    deviceCookie(email) {
      const [name, ...olderNames] = deps.devices.cookieNames(normalizeEmail(email));
      return { name: name!, olderNames, maxAgeSeconds: deps.devices.ttlSeconds };
    },

    async listSessions(principal) {
      const list = await sessions.listForUser(principal.userId);
      return list.sort((a, b) => b.created_at.localeCompare(a.created_at)).map((s) => ({
        id: s.id,
        createdAt: s.created_at,
        lastSeenAt: s.last_seen_at,
        ip: s.ip,
        userAgent: s.user_agent,
        rememberMe: s.remember_me,
        current: s.id === principal.sessionId,
      }));
    },

    async revokeSession(principal, sessionId, meta) {
      await sessions.revokeOwnSession(principal.userId, sessionId);
      await audit.record({
        type: "session.revoked",
        outcome: "success",
        userId: principal.userId,
        meta,
        details: { session_id: sessionId },
      });
    },

    async register(input, meta) {
      const email = normalizeEmail(input.email);
      await deps.rates.checkAccount("register", email, meta);
      await deps.policy.assert(input.password, [email, input.displayName ?? ""]);
      const passwordHash = await hasher.hash(input.password);
      const user = await users.createUser({ email, displayName: input.displayName, passwordHash });
      await audit.record({ type: "user.registered", outcome: "success", userId: user.id, meta });
      if (deps.verifyEmailOnRegister) deps.emailVerification.request(user, meta);
      return toPublicUser(user);
    },

    async login(input, meta) {
      const { user, email, deviceId } = await checkPassword(
        input.email,
        input.password,
        input.deviceToken,
        meta,
      );
      const issued = await service.startSession(user, input, meta);
      // This client has now proven the account: its future failures are judged apart.
      return { ...issued, deviceToken: deps.devices.issue(email, deviceId) };
    },

    async verifyPassword(email, password, meta) {
      return (await checkPassword(email, password, undefined, meta)).user;
    },

    async startSession(user, options, meta) {
      const now = clock.now();
      const ttl = options.rememberMe ? deps.rememberMeTtlSeconds : deps.sessionTtlSeconds;
      const expiresAt = new Date(now.getTime() + ttl * 1000);
      const scope = options.scope === undefined ? null : grantScopes(user.role, options.scope);
      const csrfToken = options.useCookies ? randomSecret() : null;
      await evictOldSessions(user.id, meta);
      let refreshToken = "";
      const session = await sessions.createSession({
        userId: user.id,
        rememberMe: options.rememberMe,
        scope,
        meta,
        expiresAt,
        fingerprint: sessionFingerprint(meta.userAgent, meta.ip, deps.sessionBindIp),
        csrfHash: csrfToken === null ? null : sha256(csrfToken),
        passwordVersion: user.password_changed_at,
      }, async (sessionId) => {
        const signed = await tokens.signRefresh({ userId: user.id, sessionId, expiresAt }, now);
        refreshToken = signed.token;
        return signed.jti;
      });
      await audit.record({
        type: "auth.login",
        outcome: "success",
        userId: user.id,
        meta,
        details: {
          session_id: session.id,
          remember_me: options.rememberMe,
          cookies: options.useCookies,
        },
      });
      return {
        pair: await issuePair(session, user, refreshToken, now),
        csrfToken,
        deviceToken: null,
      };
    },

    async refresh(input, meta) {
      const now = clock.now();
      const claims = await tokens.verifyRefresh(input.refreshToken);
      const entry = await sessions.getEntry(claims.sid);
      if (entry.value === null || entry.versionstamp === null) {
        throw new TokenRevokedError("The session has ended");
      }
      const session = entry.value;
      if (session.user_id !== claims.sub) throw new TokenInvalidError("Token is invalid");
      // Before anything else: a forged cross-site request must not trigger reuse detection.
      checkCsrfDoubleSubmit(session, input);
      if (session.refresh_jti !== claims.jti) {
        // A refresh token of this session that is not the current one was spent
        // before: someone holds a copy. Revoke the whole session (RFC 9700 §4.14.2).
        // A replayed cookie pair lands here too: its CSRF token is the spent one.
        await endSession(session, "auth.refresh_reuse_detected", meta);
        throw new TokenRevokedError("The refresh token was already used; the session is revoked");
      }
      checkCsrfBinding(session, input);
      if (new Date(session.expires_at) <= now) throw new TokenExpiredError("The session has ended");
      if (
        now.getTime() - new Date(session.last_seen_at).getTime() > deps.sessionIdleSeconds * 1000
      ) {
        await endSession(session, "session.idle_timeout", meta);
        throw new TokenExpiredError("The session was idle for too long");
      }
      const fingerprint = sessionFingerprint(meta.userAgent, meta.ip, deps.sessionBindIp);
      if (!timingSafeEqual(fingerprint, session.fingerprint)) {
        await endSession(session, "session.fingerprint_mismatch", meta);
        throw new TokenRevokedError("The session was used from another client");
      }
      const user = await users.getUser(session.user_id);
      if (user === null || user.disabled || user.password_changed_at !== session.password_version) {
        await sessions.revokeSession(session.id);
        throw new TokenRevokedError("The session has ended");
      }
      const expiresAt = new Date(session.expires_at);
      const next = await tokens.signRefresh(
        { userId: user.id, sessionId: session.id, expiresAt },
        now,
      );
      const csrfToken = session.csrf_hash === null ? null : randomSecret();
      const rotation = { jti: next.jti, csrfHash: csrfToken === null ? null : sha256(csrfToken) };
      // First commit wins; a concurrent refresh with the same token loses here.
      if (await sessions.rotate(entry, rotation, meta) === "lost_race") {
        // The same token was spent twice at once: a copy exists, so the session ends
        // (the winner's new pair dies with it), exactly as for a later replay.
        await endSession(session, "auth.refresh_reuse_detected", meta);
        throw new TokenRevokedError("The refresh token was already used; the session is revoked");
      }
      await audit.record({
        type: "auth.refresh",
        outcome: "success",
        userId: user.id,
        meta,
        details: { session_id: session.id },
      });
      return {
        pair: await issuePair(session, user, next.token, now),
        csrfToken,
        deviceToken: null,
      };
    },

    async authenticate(accessToken) {
      const claims = await tokens.verifyAccess(accessToken);
      const { revoked, session, user } = await sessions.checkAccess(
        claims.jti,
        claims.sid,
        claims.sub,
      );
      if (revoked || session === null || session.user_id !== claims.sub) {
        throw new TokenRevokedError("The token has been revoked");
      }
      // A session's absolute end bounds every token issued for it (security review #10):
      // an access token must not outlive its session by up to its own lifetime.
      const now = clock.now();
      if (Date.parse(session.expires_at) <= now.getTime()) {
        throw new TokenRevokedError("The session of this token has ended");
      }
      // A disabled account, or one whose role changed since the token was issued, is
      // refused at once rather than when the token expires.
      if (
        user === null || user.disabled || user.role !== claims.role ||
        user.password_changed_at !== session.password_version
      ) {
        throw new TokenRevokedError("The account changed since this token was issued");
      }
      return {
        kind: "user",
        userId: claims.sub,
        sessionId: claims.sid,
        jti: claims.jti,
        role: claims.role,
        scopes: scopeSet(claims),
        // Judged now, not when the token was issued.
        passwordExpired: passwordExpired(user, now),
        expiresAt: new Date(claims.exp * 1000),
        user,
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

    async logoutWithCookie(input, meta) {
      const claims = await tokens.verifyRefresh(input.refreshToken);
      const entry = await sessions.getEntry(claims.sid);
      if (entry.value === null || entry.value.user_id !== claims.sub) return;
      checkCsrf(entry.value, input);
      await sessions.revokeSession(claims.sid);
      await audit.record({
        type: "auth.logout",
        outcome: "success",
        userId: claims.sub,
        meta,
        details: { session_id: claims.sid, cookies: true },
      });
    },

    async logoutAll(principal, meta) {
      await sessions.revokeAccessToken(principal.jti, principal.expiresAt);
      // Every credential, not only sessions: API keys and OAuth2 grants too (security review #10).
      const revoked = await deps.revocation.revokeAll(principal.userId, "logout_all", { meta });
      await audit.record({
        type: "auth.logout_all",
        outcome: "success",
        userId: principal.userId,
        meta,
        details: { revoked },
      });
    },
  };
  return service;
}
