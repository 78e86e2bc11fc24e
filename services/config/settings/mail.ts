/**
 * Settings of outgoing mail.
 * Spread into `SETTINGS` by `../settings.ts`, whose header says how to add a setting.
 *
 * @module
 */
import { z } from "zod";
import { nonNegativeInt, positiveInt, setting } from "../declaration.ts";

/** Settings of outgoing mail. */
export const MAIL_SETTINGS = {
  SMTP_URL: setting({
    schema: z.url({ protocol: /^smtps?$/ }).optional(),
    secret: true,
    doc:
      "`smtp://user:pass@host:587` (STARTTLS required off loopback) or `smtps://…`. Without it, development logs the mail instead.",
    showAs: "SMTP",
    show: (c) => c.smtpUrl === undefined ? "off (mail is logged)" : new URL(c.smtpUrl).host,
  }),
  MAIL_FROM: setting({
    schema: z.string().min(3).max(254).regex(/^[^\r\n]+$/).default("Bulwark <no-reply@localhost>"),
    doc: "Sender of every mail.",
    show: (c) => c.mailFrom,
  }),
  MAIL_ACCOUNT_INTERVAL_MINUTES: setting({
    schema: nonNegativeInt.max(24 * 60).default(5),
    doc:
      "Least time between two mails of one kind (reset, verification) to one account; extra requests still answer 202 and are audited.",
    show: (c) => c.mailAccountIntervalMinutes,
  }),
  MAIL_ACCOUNT_DAILY_LIMIT: setting({
    schema: positiveInt.max(1000).default(10),
    doc: "Most mails of one kind to one account per 24 hours.",
    show: (c) => c.mailAccountDailyLimit,
  }),
};
