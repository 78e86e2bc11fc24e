/**
 * Settings of outgoing mail.
 * Spread into `SETTINGS` by `../settings.ts`, whose header says how to add a setting.
 *
 * @module
 */
import { z } from "zod";
import { setting } from "../declaration.ts";

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
};
