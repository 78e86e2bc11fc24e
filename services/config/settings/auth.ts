/**
 * Settings of authentication: signing keys, token and session lifetimes, lockout, passwords.
 * Spread into `SETTINGS` by `../settings.ts`, whose header says how to add a setting.
 *
 * @module
 */
import { z } from "zod";
import { bool, nonNegativeInt, positiveInt, setting } from "../declaration.ts";

/** Settings of authentication: signing keys, token and session lifetimes, lockout, passwords. */
export const AUTH_SETTINGS = {
  JWT_ACCESS_SECRET: setting({
    schema: z.string().optional(),
    secret: true,
    defaultDoc: "generated in dev",
    doc: "HS256 secret for access tokens, ≥ 32 bytes. Required in production.",
    showAs: "JWT_ACCESS_KEYS",
    show: (c) => c.accessKeys.map((k) => k.kid),
  }),
  JWT_ACCESS_SECRETS: setting({
    schema: z.string().optional(),
    secret: true,
    doc:
      "Keyring `kid:secret,kid:secret` used instead of `JWT_ACCESS_SECRET`: the first signs, all verify. Rotate by prepending a key; drop a kid to revoke every token it signed.",
  }),
  JWT_REFRESH_SECRET: setting({
    schema: z.string().optional(),
    secret: true,
    defaultDoc: "generated in dev",
    doc: "HS256 secret for refresh tokens, ≥ 32 bytes, different from the access secret.",
    showAs: "JWT_REFRESH_KEYS",
    show: (c) => c.refreshKeys.map((k) => k.kid),
  }),
  JWT_REFRESH_SECRETS: setting({
    schema: z.string().optional(),
    secret: true,
    doc: "Keyring used instead of `JWT_REFRESH_SECRET`, as `JWT_ACCESS_SECRETS`.",
  }),
  ACCESS_TOKEN_EXPIRE_MINUTES: setting({
    schema: positiveInt.max(24 * 60).default(30),
    doc: "Access token lifetime.",
    show: (c) => c.accessTokenMinutes,
  }),
  REFRESH_TOKEN_EXPIRE_DAYS: setting({
    schema: positiveInt.max(365).default(7),
    doc: "Refresh token lifetime with remember-me.",
    show: (c) => c.refreshTokenDays,
  }),
  SESSION_MAX_HOURS: setting({
    schema: positiveInt.max(24 * 30).default(12),
    doc: "Session lifetime without `remember_me`.",
    show: (c) => c.sessionMaxHours,
  }),
  SESSION_IDLE_MINUTES: setting({
    schema: positiveInt.max(60 * 24 * 30).default(60),
    doc: "A session not refreshed for this long is over.",
    show: (c) => c.sessionIdleMinutes,
  }),
  MAX_SESSIONS_PER_USER: setting({
    schema: positiveInt.max(100).default(5),
    doc: "Live sessions per user; a new login evicts the oldest.",
    show: (c) => c.maxSessionsPerUser,
  }),
  SESSION_BIND_IP: setting({
    schema: bool.default(false),
    doc: "Bind sessions to the client's /24 (IPv4) or /64 (IPv6) as well as its User-Agent.",
    show: (c) => c.sessionBindIp,
  }),
  LOCKOUT_THRESHOLD: setting({
    schema: positiveInt.max(100).default(5),
    doc: "Consecutive failed logins that lock an account.",
    show: (c) => c.lockoutThreshold,
  }),
  LOCKOUT_MINUTES: setting({
    schema: positiveInt.max(60 * 24).default(15),
    doc: "How long such a lock lasts.",
    show: (c) => c.lockoutMinutes,
  }),
  LOCKOUT_DEVICE_THRESHOLD: setting({
    schema: positiveInt.max(100).default(5),
    doc:
      "Failed logins from one trusted device (it presents its device cookie) that lock that device only; failures elsewhere never lock it.",
    show: (c) => c.lockoutDeviceThreshold,
  }),
  DEVICE_COOKIE_DAYS: setting({
    schema: positiveInt.max(365).default(90),
    doc: "Lifetime of the signed per-account device cookie a successful login sets.",
    show: (c) => c.deviceCookieDays,
  }),
  REQUIRE_EMAIL_VERIFICATION: setting({
    schema: bool.default(true),
    doc:
      "Unverified accounts may log in and edit their profile but not create API keys, grant OAuth2 consent or upload (403 `email_unverified`).",
    show: (c) => c.requireEmailVerification,
  }),
  PASSWORD_RESET_EXPIRE_MINUTES: setting({
    schema: positiveInt.max(24 * 60).default(30),
    doc: "Lifetime of a single-use reset token.",
    show: (c) => c.passwordResetExpireMinutes,
  }),
  PASSWORD_MAX_AGE_DAYS: setting({
    schema: nonNegativeInt.max(3650).default(0),
    defaultDoc: "`0` (off)",
    doc:
      "After this, a login's tokens may only change the password (403 `password_expired` elsewhere).",
    show: (c) => c.passwordMaxAgeDays,
  }),
  PASSWORD_HISTORY: setting({
    schema: nonNegativeInt.max(24).default(5),
    doc: "Recent passwords (the current one included) that may not be reused.",
    show: (c) => c.passwordHistory,
  }),
  BCRYPT_ROUNDS: setting({
    schema: z.coerce.number().int().min(10).max(31).default(12),
    doc: "bcrypt cost; values below 10 are refused.",
    show: (c) => c.bcryptRounds,
  }),
  BCRYPT_BACKEND: setting({
    schema: z.enum(["auto", "native", "js"]).default("auto"),
    doc:
      "`auto`: native bcrypt (npm `bcrypt`, C; needs `--allow-ffi`) when it loads, else bcryptjs in worker threads (logged); `native` or `js` forces one.",
    show: (c) => c.bcryptBackend,
  }),
};
