/**
 * Settings of API keys: hash pepper and per-user limit.
 * Spread into `SETTINGS` by `../settings.ts`, whose header says how to add a setting.
 *
 * @module
 */
import { z } from "zod";
import { positiveInt, setting } from "../declaration.ts";
import { MIN_SECRET_BYTES } from "../model.ts";

/** Settings of API keys: hash pepper and per-user limit. */
export const API_KEY_SETTINGS = {
  API_KEY_PEPPER: setting({
    schema: z.string().optional(),
    secret: true,
    doc:
      "Server-side secret (≥ 32 bytes) for HMAC-SHA256 key hashes; changing it revokes every key. Without it keys are stored as SHA-256.",
    showAs: "API_KEY_HASH",
    show: (c) => c.apiKeyPepper === undefined ? "sha256" : "hmac-sha256 (peppered)",
    check: (value) =>
      value !== undefined && new TextEncoder().encode(value).byteLength < MIN_SECRET_BYTES
        ? `"API_KEY_PEPPER" must be at least ${MIN_SECRET_BYTES} bytes`
        : undefined,
  }),
  MAX_API_KEYS_PER_USER: setting({
    schema: positiveInt.max(1000).default(10),
    doc: "Active API keys per user.",
    show: (c) => c.maxApiKeysPerUser,
  }),
};
