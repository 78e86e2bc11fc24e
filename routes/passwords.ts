import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../middleware/app_env.ts";
import { requestMeta, requireSession, requireSessionAuth } from "../middleware/auth.ts";
import { validate } from "../middleware/validate.ts";
import type { Deps, Services } from "./deps.ts";
import { sendTokens } from "./auth.ts";
import { LoginIdentifier, Password, route } from "./_route.ts";

const ForgotBody = z.strictObject({ email: LoginIdentifier });
const ResetBody = z.strictObject({ token: z.string().min(1).max(256), new_password: Password });
const ChangeBody = z.strictObject({
  current_password: Password,
  new_password: Password,
  /** API keys survive a change (the old password was proven) unless this asks otherwise. */
  revoke_api_keys: z.boolean().optional(),
});

/** `/auth/password/*`: forgot, reset and change. */
export function passwordRoutes(_deps: Deps, services: Services): Hono<AppEnv> {
  const { passwords } = services;
  return new Hono<AppEnv>()
    .post(
      "/forgot",
      route({
        summary: "Mail a single-use reset link (always 202)",
        tags: ["password"],
        responses: { 202: { description: "Accepted, whether or not the account exists" } },
        policy: { rate: "login" },
      }),
      validate("json", ForgotBody),
      async (c) => {
        // The mail goes out in the background: known and unknown emails answer alike.
        await passwords.requestReset(c.req.valid("json").email, requestMeta(c));
        return c.body(null, 202);
      },
    )
    .post(
      "/reset",
      route({
        summary: "Set a new password with a reset token",
        description: "Revokes every credential of the account — sessions, API keys and OAuth2 " +
          "grants — clears its lockout and marks the address verified.",
        tags: ["password"],
        responses: { 204: { description: "Password set; every credential revoked" } },
        policy: { rate: "login" },
      }),
      validate("json", ResetBody),
      async (c) => {
        const body = c.req.valid("json");
        await passwords.resetPassword(body.token, body.new_password, requestMeta(c));
        return c.body(null, 204);
      },
    )
    .post(
      "/change",
      route({
        summary: "Change my password; returns a new pair, other sessions revoked",
        description: "API keys keep working (the old password was proven) unless " +
          "`revoke_api_keys` is true.",
        tags: ["password"],
        auth: "bearer",
        responses: { 200: { description: "New token pair" } },
        policy: { allowExpiredPassword: true },
      }),
      requireSessionAuth(),
      validate("json", ChangeBody),
      async (c) => {
        const body = c.req.valid("json");
        const issued = await passwords.changePassword(requireSession(c), {
          currentPassword: body.current_password,
          newPassword: body.new_password,
          revokeApiKeys: body.revoke_api_keys ?? false,
        }, requestMeta(c));
        return sendTokens(c, issued);
      },
    );
}
