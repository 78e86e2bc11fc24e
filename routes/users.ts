import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../middleware/app_env.ts";
import { requestMeta, requirePermission, requirePrincipal } from "../middleware/auth.ts";
import { validate } from "../middleware/validate.ts";
import { isPlainText } from "../services/content/plain_text.ts";
import { MAX_BIO } from "../services/identity/profiles.ts";
import { toPublicUser } from "../services/identity/users.ts";
import type { Deps, Services } from "./deps.ts";
import { jsonResponse, route } from "./_route.ts";

/** Plain text, trimmed, 1-100 characters, no control characters or bidi overrides. */
export const DisplayName = z.string().trim().min(1).max(100)
  .refine(isPlainText, "Must not contain control characters");

/** An absolute `https` URL without credentials in it. */
const Website = z.url({ protocol: /^https$/, hostname: /^[^\s]+$/ }).max(2048)
  .refine((url) => {
    // zod runs refinements after a failed format check too: an unparsable URL is already refused.
    if (!URL.canParse(url)) return true;
    const parsed = new URL(url);
    return parsed.username === "" && parsed.password === "";
  }, "Must not contain a user name or password");

/** Exactly the profile fields: anything else (`role`, `email`, `id`…) is 422, never kept. */
const ProfileBody = z.strictObject({
  display_name: DisplayName.optional(),
  bio: z.string().max(MAX_BIO).nullable().optional().describe(
    "HTML; sanitized to b i em strong a p br ul ol li code blockquote (links https/mailto only)",
  ),
  website: Website.nullable().optional().describe("An absolute https URL"),
}).refine((body) => Object.keys(body).length > 0, "Give at least one field");

const UserOut = z.object({
  id: z.string(),
  email: z.string(),
  display_name: z.string().nullable(),
  role: z.enum(["user", "moderator", "admin"]),
  created_at: z.iso.datetime(),
  bio: z.string().nullable(),
  website: z.string().nullable(),
});

/** `/users/*`: the caller's own account. */
export function userRoutes(_deps: Deps, services: Services): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .get(
      "/me",
      route({
        summary: "The current user",
        tags: ["users"],
        auth: "bearer_or_api_key",
        responses: { 200: jsonResponse(UserOut, "The user") },
      }),
      requirePermission("profile:read"),
      // The account was read with the credential check, in the same KV round trip.
      (c) => c.json(toPublicUser(requirePrincipal(c).user)),
    )
    .patch(
      "/me",
      route({
        summary: "Update my profile (display name, sanitized bio, https website)",
        tags: ["users"],
        auth: "bearer_or_api_key",
        responses: { 200: jsonResponse(UserOut, "The updated user") },
      }),
      requirePermission("profile:write"),
      validate("json", ProfileBody),
      async (c) =>
        c.json(
          await services.profiles.update(requirePrincipal(c), c.req.valid("json"), requestMeta(c)),
        ),
    );
}
