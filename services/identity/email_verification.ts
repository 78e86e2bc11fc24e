import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { BackgroundTasks } from "../core/background.ts";
import type { Clock } from "../core/clock.ts";
import { createMailedTokens, type MailedTokenRecord } from "../core/mailed_tokens.ts";
import { VerificationTokenInvalidError } from "../core/errors.ts";
import { emailVerificationByUserKey, emailVerificationKey } from "../core/kv_keys.ts";
import type { MailBudget } from "../mail/mail_budget.ts";
import type { Mailer } from "../mail/mailer.ts";
import type { UserRecord, UserService } from "./users.ts";

/** Email ownership proof: single-use links, 24 hours, stored only as hashes. */
export interface EmailVerificationService {
  /**
   * Mails a verification link to `user` in the background (nothing for an
   * already verified address), within the account's mail budget.
   */
  request(user: UserRecord, meta: RequestMeta): void;
  /**
   * Spends a verification token and marks the address verified.
   *
   * @throws {VerificationTokenInvalidError} unknown, used, expired, or for an address since changed
   */
  confirm(token: string, meta: RequestMeta): Promise<void>;
}

/** Dependencies of {@linkcode createEmailVerificationService}. */
export interface EmailVerificationDeps {
  kv: Deno.Kv;
  clock: Clock;
  users: UserService;
  audit: AuditService;
  mailer: Mailer;
  budget: MailBudget;
  background: BackgroundTasks;
  publicUrl: string;
  /** Token lifetime. @default 24 hours */
  ttlSeconds?: number;
}

interface VerificationRecord extends MailedTokenRecord {
  /** The address the link was sent to: a link for an old address verifies nothing. */
  email: string;
}

/** True when the account's current address has been proven. */
export function isEmailVerified(user: UserRecord): boolean {
  return (user.email_verified_at ?? null) !== null;
}

/** Creates the email verification service. */
export function createEmailVerificationService(
  deps: EmailVerificationDeps,
): EmailVerificationService {
  const { kv, clock, audit } = deps;
  const ttlSeconds = deps.ttlSeconds ?? 86_400;
  const tokens = createMailedTokens<VerificationRecord>({
    kv,
    clock,
    ttlMs: ttlSeconds * 1000,
    tokenKey: emailVerificationKey,
    byUserKey: emailVerificationByUserKey,
  });

  async function send(user: UserRecord, meta: RequestMeta): Promise<void> {
    if (!await deps.budget.take("email_verification", user.id, meta)) return;
    // One live link per user: a newer request replaces the older one.
    const token = await tokens.issue({ user_id: user.id, email: user.email });
    // A concurrent request for the same user won; it sends its own mail.
    if (token === null) return;
    await audit.record({
      type: "email.verification_requested",
      outcome: "success",
      userId: user.id,
      meta,
    });
    // The token sits in the fragment so it never reaches server logs or Referer headers.
    await deps.mailer.send({
      to: user.email,
      subject: "Confirm your Bulwark email address",
      text: `Confirm that this address belongs to your Bulwark account by opening this link ` +
        `within ${Math.round(ttlSeconds / 3600)} hours:\n` +
        `${deps.publicUrl}/verify-email#token=${token}\n\n` +
        `If you did not create an account, ignore this message.`,
    });
  }

  return {
    request(user, meta) {
      if (isEmailVerified(user)) return;
      deps.background.run("verification mail", meta.requestId, () => send(user, meta));
    },

    async confirm(token, meta) {
      const invalid = new VerificationTokenInvalidError(
        "The verification token is invalid or has expired",
      );
      const entry = await tokens.find(token);
      if (entry === null || !await tokens.spend(entry)) throw invalid;
      const { user_id: userId, email } = entry.value;
      const now = clock.now();
      let stale = false;
      const updated = await deps.users.updateUser(userId, (u) => {
        stale = u.email !== email;
        return stale ? u : { ...u, email_verified_at: u.email_verified_at ?? now.toISOString() };
      });
      if (updated === null || stale) throw invalid;
      await audit.record({ type: "email.verified", outcome: "success", userId, meta });
    },
  };
}
