import type { UserRecord } from "../identity/users.ts";
import type { Role } from "./permissions.ts";

/** A caller holding an access token of a login session. */
export interface SessionPrincipal {
  kind: "user";
  userId: string;
  sessionId: string;
  jti: string;
  role: Role;
  /** What this credential may do: the token's scopes. */
  scopes: ReadonlySet<string>;
  /** The password has expired: only a password change is allowed. */
  passwordExpired: boolean;
  expiresAt: Date;
  /** The account as read in the same round trip as the revocation check. */
  user: UserRecord;
}

/** A caller holding an API key. */
export interface ApiKeyPrincipal {
  kind: "api_key";
  userId: string;
  keyId: string;
  role: Role;
  /** The key's scopes, never more than the owner holds now. */
  scopes: ReadonlySet<string>;
  /** The owner's password has expired: the key may do nothing until it is changed. */
  passwordExpired: boolean;
  /** The owner's account as read while checking the key. */
  user: UserRecord;
}

/** A caller holding an OAuth2 access token (RFC 9068) a user granted to a client. */
export interface OAuthPrincipal {
  kind: "oauth2";
  userId: string;
  clientId: string;
  grantId: string;
  jti: string;
  role: Role;
  /** The token's scopes, never more than the user's role holds now. */
  scopes: ReadonlySet<string>;
  /** The user's password has expired: the token may do nothing until it is changed. */
  passwordExpired: boolean;
  expiresAt: Date;
  /** The account as read with the grant check. */
  user: UserRecord;
}

/** The authenticated caller, as routes and guards see it. */
export type Principal = SessionPrincipal | ApiKeyPrincipal | OAuthPrincipal;
