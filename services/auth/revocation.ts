/**
 * Ending every credential of one account at once: its sessions (so its access
 * and refresh tokens stop at the next request) and its API keys. An admin role
 * change or disable, and the command line, call this one function.
 *
 * @module
 */
import type { ApiKeyService } from "../api_keys/api_keys.ts";
import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { SessionService } from "./sessions.ts";

/** Why an account's credentials were revoked (audited). */
export type RevocationReason = "role_changed" | "disabled";

/** What was revoked. */
export interface RevocationResult {
  sessions: number;
  apiKeys: number;
}

/** Revokes every session and API key of a user. */
export interface CredentialRevoker {
  /** Revokes everything and records `auth.credentials_revoked` with the counts. */
  revokeUserCredentials(
    userId: string,
    reason: RevocationReason,
    meta: { actorId?: string | undefined; request?: RequestMeta | undefined },
  ): Promise<RevocationResult>;
}

/** Dependencies of {@linkcode createCredentialRevoker}. */
export interface RevocationDeps {
  sessions: SessionService;
  apiKeys: ApiKeyService;
  audit: AuditService;
}

/** Creates the revoker. */
export function createCredentialRevoker(deps: RevocationDeps): CredentialRevoker {
  return {
    async revokeUserCredentials(userId, reason, meta) {
      const sessions = await deps.sessions.revokeAllForUser(userId);
      const apiKeys = await deps.apiKeys.revokeAllForUser(userId);
      await deps.audit.record({
        type: "auth.credentials_revoked",
        outcome: "success",
        userId: meta.actorId,
        targetUserId: userId,
        meta: meta.request,
        details: { reason, sessions_revoked: sessions, api_keys_revoked: apiKeys },
      });
      return { sessions, apiKeys };
    },
  };
}
