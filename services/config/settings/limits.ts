/**
 * Settings of rate limiting.
 * Spread into `SETTINGS` by `../settings.ts`, whose header says how to add a setting.
 *
 * @module
 */
import { z } from "zod";
import { bool, rate, setting } from "../declaration.ts";

/** Settings of rate limiting. */
export const LIMIT_SETTINGS = {
  RATE_LIMIT_LOGIN: setting({
    schema: rate.default("5/minute"),
    doc: "Login, register, password forgot/reset, OAuth2 token: per client IP and per account.",
    showAs: "RATE_LIMITS",
    show: (c) => c.rateLimits,
  }),
  RATE_LIMIT_AUTHENTICATED: setting({
    schema: rate.default("100/minute"),
    doc: "Every other route, per user id or API key id.",
  }),
  RATE_LIMIT_ANONYMOUS: setting({
    schema: rate.default("60/minute"),
    doc: "Every other route without a valid credential, per client IP.",
  }),
  RATE_LIMIT_UPLOADS: setting({
    schema: rate.default("10/minute"),
    doc: "`POST /uploads`, per user.",
  }),
  RATE_LIMIT_BURST: setting({
    schema: z.coerce.number().min(1).max(100).default(1),
    doc: "Bucket size as a multiple of the per-window limit (burst allowance).",
  }),
  RATE_LIMIT_ENABLED: setting({
    schema: bool.default(true),
    doc: "Turns rate limiting off (benchmarks only).",
  }),
};
