/**
 * The caller's own profile (`PATCH /users/me`): display name, bio (sanitized
 * HTML) and website. Only these fields exist here, so nothing else of the
 * account can be assigned through a profile update.
 *
 * @module
 */
import { type Actor, authorize } from "../auth/policy.ts";
import type { AuditService, RequestMeta } from "../core/audit.ts";
import { NotFoundError, ValidationError } from "../core/errors.ts";
import { type PublicUser, toPublicUser, type UserService } from "./users.ts";

/** A profile change; `null` clears bio or website. */
export interface ProfilePatch {
  display_name?: string | undefined;
  bio?: string | null | undefined;
  website?: string | null | undefined;
}

/** Longest bio accepted, in characters, before sanitizing. */
export const MAX_BIO = 2000;

/** Profile updates. */
export interface ProfileService {
  /**
   * @throws {ForbiddenError} | {InsufficientScopeError} without `profile:write`
   * @throws {ValidationError} when the sanitized bio is too long
   */
  update(actor: Actor, patch: ProfilePatch, meta: RequestMeta): Promise<PublicUser>;
}

/** Creates the profile service. */
export function createProfileService(
  deps: { users: UserService; audit: AuditService },
): ProfileService {
  return {
    async update(actor, patch, meta) {
      authorize(actor, "profile:update", { ownerId: actor.userId });
      // Loaded on first use (start-up stays fast); every bio still goes through it.
      const bio = patch.bio === undefined || patch.bio === null
        ? patch.bio
        : (await import("../content/html.ts")).sanitizeRichText(patch.bio);
      if (typeof bio === "string" && bio.length > 2 * MAX_BIO) {
        throw new ValidationError("Request validation failed", {
          errors: [{ path: "bio", message: "Too long once sanitized" }],
        });
      }
      const user = await deps.users.updateUser(actor.userId, (u) => ({
        ...u,
        ...(patch.display_name === undefined ? {} : { display_name: patch.display_name }),
        ...(bio === undefined ? {} : { bio }),
        ...(patch.website === undefined ? {} : { website: patch.website }),
      }));
      if (user === null) throw new NotFoundError("No such user");
      await deps.audit.record({
        type: "profile.updated",
        outcome: "success",
        userId: actor.userId,
        meta,
        details: { fields: Object.keys(patch).filter((k) => k in patch).sort() },
      });
      return toPublicUser(user);
    },
  };
}
