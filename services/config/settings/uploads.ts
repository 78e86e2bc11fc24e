/**
 * Settings of uploads: size, types, storage, quota, virus scanning, content origin.
 * Spread into `SETTINGS` by `../settings.ts`, whose header says how to add a setting.
 *
 * @module
 */
import { z } from "zod";
import { httpUrl, nonNegativeInt, positiveInt, setting } from "../declaration.ts";
import { UPLOADABLE_EXTENSIONS } from "../model.ts";

/** Settings of uploads: size, types, storage, quota, virus scanning, content origin. */
export const UPLOAD_SETTINGS = {
  UPLOAD_MAX_BYTES: setting({
    schema: positiveInt.max(1024 * 1024 * 1024).default(5 * 1024 * 1024),
    doc: "Largest upload; enforced while streaming (413 without reading the rest).",
    show: (c) => c.uploadMaxBytes,
  }),
  UPLOAD_ALLOWED_EXTENSIONS: setting({
    schema: z.string().default(UPLOADABLE_EXTENSIONS.join(" "))
      .transform((v) => v.toLowerCase().split(/[\s,]+/).filter((x) => x !== "")),
    doc:
      "Allowed extensions (a subset of these; SVG, HTML, scripts and executables are never accepted).",
    show: (c) => c.uploadAllowedExtensions,
    // SVG, HTML, scripts and executables have no safe magic-byte check, so no setting allows them.
    check: (extensions) =>
      extensions.filter((ext) => !(UPLOADABLE_EXTENSIONS as readonly string[]).includes(ext))
        .map((ext) =>
          `"UPLOAD_ALLOWED_EXTENSIONS" entry "${ext}" is not one of ${
            UPLOADABLE_EXTENSIONS.join(" ")
          }`
        ),
  }),
  UPLOAD_DIR: setting({
    schema: z.string().min(1).optional(),
    defaultDoc: "`DATA_DIR/uploads`",
    doc: "Where upload bytes live (mode 0700, random names, never served as a folder).",
    show: (c) => c.uploadDir,
  }),
  UPLOAD_STORE: setting({
    schema: z.enum(["file", "kv"]).optional(),
    defaultDoc: "`file` (`kv` on Deno Deploy)",
    doc: "`file` or `kv` (64 KiB chunks in Deno KV, for platforms without a writable disk).",
    show: (c) => c.uploadStore,
  }),
  UPLOAD_QUOTA_BYTES: setting({
    schema: nonNegativeInt.default(0),
    defaultDoc: "`0` (off)",
    doc: "Per-user storage quota (413 `quota_exceeded`).",
    show: (c) => c.uploadQuotaBytes,
  }),
  CLAMAV_ADDRESS: setting({
    schema: z.string().regex(
      /^(\/[^\0]+|[A-Za-z0-9.-]+:\d{1,5}|\[[0-9A-Fa-f:.]+\]:\d{1,5})$/,
      "must be host:port or an absolute Unix socket path",
    ).optional(),
    doc:
      "clamd `host:port` or absolute Unix socket path: every upload is scanned (INSTREAM); a dead scanner fails closed with 503.",
    showAs: "CLAMAV",
    show: (c) => c.clamavAddress ?? "off",
  }),
  CLAMAV_TIMEOUT_MS: setting({
    schema: positiveInt.max(120_000).default(10_000),
    doc: "Upper bound of one scan; behind a circuit breaker.",
    show: (c) => c.clamavTimeoutMs,
  }),
  UPLOADS_PUBLIC_ORIGIN: setting({
    schema: httpUrl.optional(),
    doc:
      'A separate origin for user content (e.g. `https://usercontent.example.net`, routed to this service): uploads answer with a `Link: <origin/uploads/{id}/content>; rel="enclosure"` header so browsers open user files away from the API\'s origin.',
    show: (c) => c.uploadsPublicOrigin ?? null,
    check: (value) =>
      value !== undefined && new URL(value).origin !== value.replace(/\/$/, "")
        ? `"UPLOADS_PUBLIC_ORIGIN" must be an origin like https://usercontent.example.net`
        : undefined,
  }),
};
