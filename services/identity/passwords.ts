import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { AuthService, IssuedTokens, SessionPrincipal } from "../auth/auth.ts";
import type { Clock } from "../core/clock.ts";
import {
  InvalidCredentialsError,
  PasswordReusedError,
  ResetTokenInvalidError,
  TokenRevokedError,
} from "../core/errors.ts";
import { createMailedTokens, type MailedTokenRecord } from "../core/mailed_tokens.ts";
import { passwordResetByUserKey, passwordResetKey } from "../core/kv_keys.ts";
import type { LockoutService } from "../auth/lockout.ts";
import type { BackgroundTasks } from "../core/background.ts";
import type { CredentialHolder, CredentialRevocation } from "../auth/revocation.ts";
import type { MailBudget } from "../mail/mail_budget.ts";
import type { RatePolicy } from "../limits/rate_policy.ts";
import type { Mailer } from "../mail/mailer.ts";
import type { PasswordHasher } from "./password_hasher.ts";
import type { PasswordPolicy } from "./password_policy.ts";
import type { SessionService } from "../auth/sessions.ts";
import { normalizeEmail, type UserRecord, type UserService } from "./users.ts";

/** Password reset and change, with history. */
export interface PasswordService {
  /**
   * Starts a reset in the background and returns at once, whether or not the
   * account exists, so neither the answer nor its timing reveals accounts. The
   * address's own `forgot` bucket is spent first.
   *
   * @throws {RateLimitedError} when that bucket is empty
   */
  requestReset(email: string, meta: RequestMeta): Promise<void>;
  /**
   * Sets a new password with a single-use reset token; revokes every credential of the
   * account (sessions, API keys, OAuth2 grants), clears lockout and verifies the address.
   *
   * @throws {ResetTokenInvalidError} for an unknown, used or expired token (one answer)
   * @throws {PasswordPolicyError} | {PasswordReusedError}
   */
  resetPassword(token: string, newPassword: string, meta: RequestMeta): Promise<void>;
  /**
   * Changes the caller's password, revokes every session and starts a new one (new id).
   * API keys stay (the owner proved the old password) unless `revokeApiKeys` is set.
   *
   * @throws {InvalidCredentialsError} when the current password is wrong
   * @throws {PasswordPolicyError} | {PasswordReusedError}
   */
  changePassword(
    principal: SessionPrincipal,
    input: { currentPassword: string; newPassword: string; revokeApiKeys: boolean },
    meta: RequestMeta,
  ): Promise<IssuedTokens>;
  /** Resolves when background work (reset mails) has finished; for tests and shutdown. */
  settled(): Promise<void>;
}

/** Dependencies of {@linkcode createPasswordService}. */
export interface PasswordDeps {
  kv: Deno.Kv;
  clock: Clock;
  hasher: PasswordHasher;
  policy: PasswordPolicy;
  users: UserService;
  sessions: SessionService;
  lockout: LockoutService;
  auth: AuthService;
  audit: AuditService;
  revocation: CredentialRevocation;
  /** Revokes API keys on request at a password change. */
  apiKeys: CredentialHolder;
  mailer: Mailer;
  budget: MailBudget;
  background: BackgroundTasks;
  /** The per-account `forgot` bucket. */
  rates: Pick<RatePolicy, "checkAccount">;
  publicUrl: string;
  /** Reset token lifetime (OWASP Forgot Password Cheat Sheet: short). */
  resetTtlSeconds: number;
  /** How many recent passwords (the current one included) may not be reused. */
  historySize: number;
}

/** Creates the password service. */
export function createPasswordService(deps: PasswordDeps): PasswordService {
  const { kv, clock, hasher, users, audit } = deps;
  const resetTokens = createMailedTokens<MailedTokenRecord>({
    kv,
    clock,
    ttlMs: deps.resetTtlSeconds * 1000,
    tokenKey: passwordResetKey,
    byUserKey: passwordResetByUserKey,
  });

  /** Refuses a password equal to the current one or one of the stored earlier ones. */
  async function assertNotReused(user: UserRecord, password: string): Promise<void> {
    const recent = [user.password_hash, ...user.password_history].slice(0, deps.historySize);
    const matches = await Promise.all(recent.map((hash) => hasher.verify(password, hash)));
    if (matches.some(Boolean)) {
      throw new PasswordReusedError(
        `The new password must differ from the last ${deps.historySize} passwords`,
        { errors: [{ path: "new_password", message: "Password was used recently" }] },
      );
    }
  }

  async function setPassword(user: UserRecord, password: string, verified = false): Promise<void> {
    const hash = await hasher.hash(password);
    const now = clock.now().toISOString();
    await users.updateUser(user.id, (u) => ({
      ...u,
      email_verified_at: verified && u.email === user.email
        ? u.email_verified_at ?? now
        : u.email_verified_at ?? null,
      password_hash: hash,
      password_changed_at: now,
      password_history: [u.password_hash, ...u.password_history].slice(
        0,
        Math.max(0, deps.historySize - 1),
      ),
    }));
  }

  async function sendReset(email: string, meta: RequestMeta): Promise<void> {
    const user = await users.getUserByEmail(email);
    if (user === null || user.disabled) {
      await audit.record({
        type: "password.reset_requested",
        outcome: "failure",
        meta,
        details: { reason: "unknown_account" },
      });
      return;
    }
    // Still 202 to the caller; one mail per 5 minutes and 10 a day reach the inbox.
    if (!await deps.budget.take("password_reset", user.id, meta)) return;
    // A newer request replaces the older token: only one is live per user.
    const token = await resetTokens.issue({ user_id: user.id });
    // A concurrent request for the same user won; it sends its own mail.
    if (token === null) return;
    await audit.record({
      type: "password.reset_requested",
      outcome: "success",
      userId: user.id,
      meta,
    });
    // The token sits in the fragment so it never reaches server logs or Referer headers.
    const link = `${deps.publicUrl}/reset-password#token=${token}`;
    try {
      await deps.mailer.send({
        to: user.email,
        subject: "Reset your Bulwark password",
        text: `Someone asked to reset the password of this account.\n\n` +
          `To choose a new password, open this link within ${
            Math.round(deps.resetTtlSeconds / 60)
          } minutes:\n${link}\n\n` +
          `If it was not you, ignore this message; your password stays the same.`,
      });
    } catch (error) {
      await audit.record({
        type: "mail.send_failed",
        outcome: "failure",
        userId: user.id,
        meta,
        details: {
          purpose: "password_reset",
          error: error instanceof Error ? error.name : "unknown",
        },
      });
      throw error;
    }
  }

  return {
    async requestReset(email, meta) {
      const account = normalizeEmail(email);
      // Its own per-account bucket: forgot requests cannot spend the login budget.
      await deps.rates.checkAccount("forgot", account, meta);
      deps.background.run("password reset mail", meta.requestId, () => sendReset(account, meta));
    },

    async resetPassword(token, newPassword, meta) {
      const invalid = new ResetTokenInvalidError("The reset token is invalid or has expired");
      const entry = await resetTokens.find(token);
      if (entry === null) throw invalid;
      const user = await users.getUser(entry.value.user_id);
      if (user === null || user.disabled) throw invalid;
      // Check the new password before spending the token, so a refused one can be retried.
      await deps.policy.assert(newPassword, [user.email, user.display_name ?? ""], "new_password");
      await assertNotReused(user, newPassword);
      if (!await resetTokens.spend(entry)) throw invalid;
      // Following the mailed link proves the address, too.
      await setPassword(user, newPassword, true);
      // Recovery must leave nothing behind that still authenticates (security review #10,
      // finding 1: an API key made by whoever registered the address first).
      const revoked = await deps.revocation.revokeAll(user.id, "password_reset", { meta });
      await deps.lockout.clear(user.email);
      await audit.record({
        type: "password.reset",
        outcome: "success",
        userId: user.id,
        meta,
        details: { revoked },
      });
    },

    async changePassword(principal, input, meta) {
      const user = await users.getUser(principal.userId);
      if (user === null || user.disabled) throw new TokenRevokedError("The account is not active");
      // The current password is a credential: guesses through this session lock this
      // session's attempts (a device of its own), never the account for everyone else.
      const subject = { account: user.email, deviceId: `session:${principal.sessionId}` };
      await deps.lockout.begin(subject, meta);
      if (!await hasher.verify(input.currentPassword, user.password_hash)) {
        await deps.lockout.recordFailure(subject, meta);
        await audit.record({
          type: "password.change",
          outcome: "failure",
          userId: user.id,
          meta,
          details: { reason: "wrong_current_password" },
        });
        throw new InvalidCredentialsError("The current password is wrong");
      }
      await deps.lockout.recordSuccess(subject);
      await deps.policy.assert(
        input.newPassword,
        [user.email, user.display_name ?? ""],
        "new_password",
      );
      await assertNotReused(user, input.newPassword);
      await setPassword(user, input.newPassword);
      const current = await deps.sessions.getEntry(principal.sessionId);
      await deps.sessions.revokeAccessToken(principal.jti, principal.expiresAt);
      await deps.sessions.revokeAllForUser(user.id);
      const apiKeysRevoked = input.revokeApiKeys ? await deps.apiKeys.revokeAllForUser(user.id) : 0;
      await audit.record({
        type: "password.change",
        outcome: "success",
        userId: user.id,
        meta,
        details: { api_keys_revoked: apiKeysRevoked },
      });
      const updated = await users.getUser(user.id) ?? user;
      // A new session id: privileges changed, so the old id must not live on.
      return await deps.auth.startSession(updated, {
        rememberMe: current.value?.remember_me ?? false,
        useCookies: (current.value?.csrf_hash ?? null) !== null,
      }, meta);
    },

    settled() {
      return deps.background.settled();
    },
  };
}
