import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { SessionService } from "./sessions.ts";

/** Something that holds credentials of a user and can end them all (API keys, OAuth2 grants). */
export interface CredentialHolder {
  /** A name for the audit record: `api_keys`, `oauth2_grants`. */
  readonly kind: string;
  /** Ends every credential of the user; returns how many. */
  revokeAllForUser(userId: string): Promise<number>;
}

/** Why every credential of an account was revoked. */
export type RevocationReason =
  | "password_reset"
  | "logout_all"
  | "account_disabled"
  | "role_changed"
  | "operator";

/** Revokes every credential of an account in one place. */
export interface CredentialRevocation {
  /**
   * Revokes every session (so every access and refresh token of them) and every
   * credential of the registered holders (API keys, OAuth2 grants), and audits
   * it once with the counts. Returns the counts by kind.
   */
  revokeAll(
    userId: string,
    reason: RevocationReason,
    meta?: RequestMeta,
  ): Promise<Record<string, number>>;
}

/** Dependencies of {@linkcode createCredentialRevocation}. */
export interface CredentialRevocationDeps {
  sessions: SessionService;
  audit: AuditService;
  /** Every other holder of credentials (API keys, OAuth2 grants, …). */
  holders: readonly CredentialHolder[];
}

/**
 * Creates the one "revoke every credential" of the service: account recovery,
 * logout-all and an admin disable must leave nothing behind that still
 * authenticates (security review #10, finding 1: credentials outliving recovery).
 */
export function createCredentialRevocation(deps: CredentialRevocationDeps): CredentialRevocation {
  return {
    async revokeAll(userId, reason, meta) {
      const counts: Record<string, number> = {
        sessions: await deps.sessions.revokeAllForUser(userId),
      };
      for (const holder of deps.holders) {
        counts[holder.kind] = await holder.revokeAllForUser(userId);
      }
      await deps.audit.record({
        type: "credentials.revoked_all",
        outcome: "success",
        userId,
        meta,
        details: { reason, ...counts },
      });
      return counts;
    },
  };
}
