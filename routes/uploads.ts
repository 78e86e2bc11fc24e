import { type Context, Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../middleware/app_env.ts";
import {
  requestMeta,
  requirePermission,
  requirePrincipal,
  requireVerifiedEmail,
} from "../middleware/auth.ts";
import { validate } from "../middleware/validate.ts";
import { NotFoundError, PayloadTooLargeError } from "../services/core/errors.ts";
import { hasAdminReach } from "../services/auth/permissions.ts";
import { contentDisposition, type UploadCaller } from "../services/uploads/uploads.ts";
import type { Deps, Services } from "./deps.ts";
import { IdParam, jsonResponse, route, type RouteSpec } from "./_route.ts";

const UploadOut = z.object({
  id: z.string(),
  filename: z.string().describe("Sanitized display name; never used as a path"),
  content_type: z.string().describe("Detected from the content's magic bytes"),
  size: z.number().int(),
  sha256: z.string(),
  created_at: z.iso.datetime(),
});

/** Room for boundaries, part headers and a few small fields on top of the file itself. */
const MULTIPART_OVERHEAD_BYTES = 16 * 1024;

const CONTENT_NOTE = "Content is always an attachment with `X-Content-Type-Options: nosniff` and " +
  "`Content-Security-Policy: default-src 'none'; sandbox`. When `UPLOADS_PUBLIC_ORIGIN` is set " +
  "(e.g. `https://usercontent.example.net`, routed to this same service), the `Link` header " +
  '(`rel="enclosure"`) of `POST /uploads` and `GET /uploads/{id}` points at that origin, so ' +
  "browsers never open user content on the API's origin.";

function doc(
  summary: string,
  responses: RouteSpec["responses"],
  extra: Partial<RouteSpec> = {},
) {
  return route({ summary, tags: ["uploads"], auth: "bearer_or_api_key", responses, ...extra });
}

/**
 * `/uploads`: validated, scanned, safely stored files. Owners and admins see an upload; anyone
 * else gets 404, the same answer as for a missing one.
 */
export function uploadRoutes(deps: Deps, services: Services): Hono<AppEnv> {
  const { uploads } = services;
  const { config } = deps;
  const maxBodyBytes = config.uploadMaxBytes + MULTIPART_OVERHEAD_BYTES;
  const contentUrl = (id: string) =>
    `<${config.uploadsPublicOrigin ?? ""}/uploads/${id}/content>; rel="enclosure"`;

  return new Hono<AppEnv>()
    .post(
      "/",
      doc("Upload a file (multipart field `file`)", { 201: jsonResponse(UploadOut, "Stored") }, {
        description: `The size limit is enforced while streaming. ${CONTENT_NOTE}`,
        // The multipart body is counted while streaming and cut off at UPLOAD_MAX_BYTES.
        policy: { rate: "uploads", body: "stream" },
      }),
      requirePermission("uploads:write"),
      requireVerifiedEmail(config.requireEmailVerification),
      async (c) => {
        const principal = requirePrincipal(c);
        if (Number(c.req.header("content-length") ?? 0) > maxBodyBytes) {
          throw new PayloadTooLargeError(`The upload exceeds ${config.uploadMaxBytes} bytes`);
        }
        // busboy and node:stream load on the first upload, not at start-up.
        const { streamUploadField } = await import("../services/uploads/multipart.ts");
        const file = await streamUploadField(c.req.raw.body, c.req.header("content-type"), {
          field: "file",
          maxFileBytes: config.uploadMaxBytes,
          maxBodyBytes,
        });
        const upload = await uploads.create(principal.userId, file, requestMeta(c));
        c.header("Location", `/uploads/${upload.id}`);
        c.header("Link", contentUrl(upload.id));
        return c.json(upload, 201);
      },
    )
    .get(
      "/",
      doc("List my uploads", { 200: jsonResponse(z.array(UploadOut), "Uploads") }),
      requirePermission("uploads:read"),
      async (c) => c.json(await uploads.list(requirePrincipal(c).userId)),
    )
    .get(
      "/:id",
      doc("Describe one upload", { 200: jsonResponse(UploadOut, "Upload") }),
      requirePermission("uploads:read"),
      validate("param", IdParam),
      async (c) => {
        const id = c.req.valid("param").id;
        const upload = await uploads.getUpload(caller(c), id);
        if (upload === null) throw new NotFoundError("No such upload");
        c.header("Link", contentUrl(upload.id));
        return c.json(upload);
      },
    )
    .get(
      "/:id/content",
      doc(
        "Download an upload's bytes",
        { 200: { description: "The bytes, with the detected type" } },
        { description: CONTENT_NOTE },
      ),
      requirePermission("uploads:read"),
      validate("param", IdParam),
      async (c) => {
        const opened = await uploads.openUpload(caller(c), c.req.valid("param").id);
        if (opened === null) throw new NotFoundError("No such upload");
        const { upload, body } = opened;
        return c.body(body, 200, {
          "Content-Type": upload.content_type,
          "Content-Length": String(upload.size),
          "Content-Disposition": contentDisposition(upload.filename),
          "X-Content-Type-Options": "nosniff",
          "Content-Security-Policy": "default-src 'none'; sandbox",
          "Cache-Control": "private, no-store",
        });
      },
    )
    .delete(
      "/:id",
      doc("Delete an upload", { 204: { description: "Deleted" } }),
      requirePermission("uploads:write"),
      validate("param", IdParam),
      async (c) => {
        await uploads.deleteUpload(caller(c), c.req.valid("param").id, requestMeta(c));
        return c.body(null, 204);
      },
    );
}

function caller(c: Context<AppEnv>): UploadCaller {
  const principal = requirePrincipal(c);
  return { userId: principal.userId, isAdmin: hasAdminReach(principal) };
}
