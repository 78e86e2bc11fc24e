import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../middleware/app_env.ts";
import { requestMeta, requireSession, requireSessionAuth } from "../middleware/auth.ts";
import { validate } from "../middleware/validate.ts";
import type { Deps, Services } from "./deps.ts";
import { route } from "./_route.ts";

const ConfirmBody = z.strictObject({ token: z.string().min(1).max(256) });

/** `/auth/verify-email/*`: prove the account's address with a single-use mailed link. */
export function emailVerificationRoutes(_deps: Deps, services: Services): Hono<AppEnv> {
  const { emailVerification } = services;
  return new Hono<AppEnv>()
    .post(
      "/request",
      route({
        summary: "Mail a single-use verification link (24 h) to my address",
        description: "Always 202; nothing is sent for an address already verified, and at " +
          "most one mail per 5 minutes and 10 a day reach an inbox.",
        tags: ["auth"],
        auth: "bearer",
        responses: { 202: { description: "Accepted" } },
      }),
      requireSessionAuth(),
      (c) => {
        // The account was read with the credential check, in the same round trip.
        emailVerification.request(requireSession(c).user, requestMeta(c));
        return c.body(null, 202);
      },
    )
    .post(
      "/confirm",
      route({
        summary: "Confirm my address with the token from the mailed link",
        tags: ["auth"],
        responses: {
          204: { description: "Verified" },
          400: { description: "Unknown, used or expired token (`verification_token_invalid`)" },
        },
        policy: { rate: "login" },
      }),
      validate("json", ConfirmBody),
      async (c) => {
        await emailVerification.confirm(c.req.valid("json").token, requestMeta(c));
        return c.body(null, 204);
      },
    );
}
