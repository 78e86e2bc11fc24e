import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../middleware/app_env.ts";
import { requestMeta, requireSession, requireSessionAuth } from "../middleware/auth.ts";
import { validate } from "../middleware/validate.ts";
import { normalizeEmail } from "../services/identity/users.ts";
import type { Deps, Services } from "./deps.ts";
import { sendTokens } from "./auth.ts";
import { LoginIdentifier, Password, route } from "./_route.ts";

const ForgotBody = z.strictObject({ email: LoginIdentifier });
const ResetBody = z.strictObject({ token: z.string().min(1).max(256), new_password: Password });
const ChangeBody = z.strictObject({ current_password: Password, new_password: Password });

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
        const { email } = c.req.valid("json");
        await services.rates.checkAccount(normalizeEmail(email), requestMeta(c));
        // Runs in the background so known and unknown emails answer in the same time.
        passwords.requestReset(email, requestMeta(c));
        return c.body(null, 202);
      },
    )
    .post(
      "/reset",
      route({
        summary: "Set a new password with a reset token",
        tags: ["password"],
        responses: { 204: { description: "Password set; every session revoked" } },
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
        }, requestMeta(c));
        return sendTokens(c, issued);
      },
    );
}
