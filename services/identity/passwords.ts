import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { AuthService, IssuedTokens, SessionPrincipal } from "../auth/auth.ts";
import type { Clock } from "../core/clock.ts";
import {
  InvalidCredentialsError,
  PasswordReusedError,
  ResetTokenInvalidError,
  TokenRevokedError,
} from "../core/errors.ts";
import { randomSecret, sha256 } from "../core/crypto.ts";
import { passwordResetByUserKey, passwordResetKey } from "../core/kv_keys.ts";
import type { LockoutService } from "../auth/lockout.ts";
import type { Logger } from "../core/logger.ts";
import type { Mailer } from "../mail/mailer.ts";
import type { PasswordHasher } from "./password_hasher.ts";
import type { PasswordPolicy } from "./password_policy.ts";
import type { SessionService } from "../auth/sessions.ts";
import { normalizeEmail, type UserRecord, type UserService } from "./users.ts";

/** Password reset and change, with history. */
export interface PasswordService {
  /**
   * Starts a reset in the background and returns at once, whether or not the
   * account exists, so neither the answer nor its timing reveals accounts.
   */
  requestReset(email: string, meta: RequestMeta): void;
  /**
   * Sets a new password with a single-use reset token; revokes every session and clears lockout.
   *
   * @throws {ResetTokenInvalidError} for an unknown, used or expired token (one answer)
   * @throws {PasswordPolicyError} | {PasswordReusedError}
   */
  resetPassword(token: string, newPassword: string, meta: RequestMeta): Promise<void>;
  /**
   * Changes the caller's password, revokes every session and starts a new one (new id).
   *
   * @throws {InvalidCredentialsError} when the current password is wrong
   * @throws {PasswordPolicyError} | {PasswordReusedError}
   */
  changePassword(
    principal: SessionPrincipal,
    input: { currentPassword: string; newPassword: string },
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
  mailer: Mailer;
  logger: Logger;
  publicUrl: string;
  /** Reset token lifetime (OWASP Forgot Password Cheat Sheet: short). */
  resetTtlSeconds: number;
  /** How many recent passwords (the current one included) may not be reused. */
  historySize: number;
}

interface ResetRecord {
  user_id: string;
  expires_at: string;
}

/** A reset token is 32 random bytes, base64url. */
const RESET_TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** Creates the password service. */
export function createPasswordService(deps: PasswordDeps): PasswordService {
  const { kv, clock, hasher, users, audit } = deps;
  const pending = new Set<Promise<void>>();

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

  async function setPassword(user: UserRecord, password: string): Promise<void> {
    const hash = await hasher.hash(password);
    const now = clock.now().toISOString();
    await users.updateUser(user.id, (u) => ({
      ...u,
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
    const token = randomSecret();
    const hash = sha256(token);
    const now = clock.now();
    const expiresAt = new Date(now.getTime() + deps.resetTtlSeconds * 1000);
    const expireIn = deps.resetTtlSeconds * 1000;
    // A newer request replaces the older token: only one is live per user.
    const previous = await kv.get<string>(passwordResetByUserKey(user.id));
    const op = kv.atomic()
      .check(previous)
      .set(
        passwordResetKey(hash),
        { user_id: user.id, expires_at: expiresAt.toISOString() } satisfies ResetRecord,
        { expireIn },
      )
      .set(passwordResetByUserKey(user.id), hash, { expireIn });
    if (previous.value !== null) op.delete(passwordResetKey(previous.value));
    if (!(await op.commit()).ok) return; // A concurrent request for the same user won; it sends its own mail.
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
      deps.logger.warn("password reset mail not sent", { request_id: meta.requestId, error });
    }
  }

  return {
    requestReset(email, meta) {
      const task = sendReset(normalizeEmail(email), meta).catch((error) => {
        // Background work has no caller to rethrow to: log it with the request id.
        deps.logger.error("password reset failed", { request_id: meta.requestId, error });
      });
      pending.add(task);
      task.finally(() => pending.delete(task));
    },

    async resetPassword(token, newPassword, meta) {
      const invalid = new ResetTokenInvalidError("The reset token is invalid or has expired");
      if (!RESET_TOKEN.test(token)) throw invalid;
      const entry = await kv.get<ResetRecord>(passwordResetKey(sha256(token)));
      if (entry.value === null || new Date(entry.value.expires_at) <= clock.now()) throw invalid;
      const user = await users.getUser(entry.value.user_id);
      if (user === null || user.disabled) throw invalid;
      // Check the new password before spending the token, so a refused one can be retried.
      await deps.policy.assert(newPassword, [user.email, user.display_name ?? ""], "new_password");
      await assertNotReused(user, newPassword);
      const spent = await kv.atomic()
        .check(entry)
        .delete(passwordResetKey(sha256(token)))
        .delete(passwordResetByUserKey(user.id))
        .commit();
      if (!spent.ok) throw invalid;
      await setPassword(user, newPassword);
      const revoked = await deps.sessions.revokeAllForUser(user.id);
      await deps.lockout.clear(user.email);
      await audit.record({
        type: "password.reset",
        outcome: "success",
        userId: user.id,
        meta,
        details: { sessions_revoked: revoked },
      });
    },

    async changePassword(principal, input, meta) {
      const user = await users.getUser(principal.userId);
      if (user === null || user.disabled) throw new TokenRevokedError("The account is not active");
      // The current password is a credential: guess it and the account locks like a login.
      await deps.lockout.begin(user.email, meta);
      if (!await hasher.verify(input.currentPassword, user.password_hash)) {
        await deps.lockout.recordFailure(user.email, meta);
        await audit.record({
          type: "password.change",
          outcome: "failure",
          userId: user.id,
          meta,
          details: { reason: "wrong_current_password" },
        });
        throw new InvalidCredentialsError("The current password is wrong");
      }
      await deps.lockout.recordSuccess(user.email);
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
      await audit.record({ type: "password.change", outcome: "success", userId: user.id, meta });
      const updated = await users.getUser(user.id) ?? user;
      // A new session id: privileges changed, so the old id must not live on.
      return await deps.auth.startSession(updated, {
        rememberMe: current.value?.remember_me ?? false,
        useCookies: (current.value?.csrf_hash ?? null) !== null,
      }, meta);
    },

    async settled() {
      await Promise.all(pending);
    },
  };
}
