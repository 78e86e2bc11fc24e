/**
 * Listing and searching accounts for administrators, through KV indexes only:
 * a prefix search walks the `users_search` range of that prefix (normalised
 * emails and display names), a role filter walks `users_by_role`, and nothing
 * ever reads every user.
 *
 * @module
 */
import type { Role } from "../auth/permissions.ts";
import { getManyChunked } from "../core/kv.ts";
import {
  userKey,
  usersByEmailPrefix,
  usersByRolePrefix,
  userSearchPrefix,
} from "../core/kv_keys.ts";
import { type Page, scanPage } from "../core/pagination.ts";
import { normalizeSearchTerm, searchTerms, type UserRecord } from "./users.ts";

/** A directory query. */
export interface UserQuery {
  /** Prefix of the normalised email or display name. */
  q?: string | undefined;
  role?: Role | undefined;
  cursor?: string | undefined;
  /** 1-100. */
  limit: number;
}

/** Read-only account listing. */
export interface UserDirectory {
  /**
   * With `q`: accounts whose normalised email or display name starts with it, in
   * term order, each once. Without: every account in email order (or of one role).
   *
   * @throws {ValidationError} for a malformed cursor
   */
  list(query: UserQuery): Promise<Page<UserRecord>>;
}

/** Above every character a normalised term can hold: the end of a prefix range. */
const RANGE_END = "\u{10FFFF}";

/** Creates the directory. */
export function createUserDirectory(deps: { kv: Deno.Kv }): UserDirectory {
  const { kv } = deps;

  async function records(entries: Deno.KvEntry<string>[]): Promise<(UserRecord | null)[]> {
    const read = await getManyChunked<UserRecord>(kv, entries.map((e) => userKey(e.value)));
    return read.map((r) => r.value);
  }

  return {
    async list(query) {
      const q = query.q === undefined ? "" : normalizeSearchTerm(query.q);
      if (q !== "") {
        const prefix = userSearchPrefix();
        return await scanPage<string, UserRecord>(kv, {
          prefix,
          range: { start: [...prefix, q], end: [...prefix, q + RANGE_END] },
          tailLength: 2,
          cursor: query.cursor,
          limit: query.limit,
          resolve: async (entries) => {
            const users = await records(entries);
            return users.map((user, i) => {
              if (user === null) return null;
              if (query.role !== undefined && user.role !== query.role) return null;
              // A user matching by email and by name has two entries: only the first counts,
              // so no page repeats anyone.
              const term = String(entries[i]!.key[1]);
              const first = searchTerms(user).filter((t) => t.startsWith(q)).sort()[0];
              return first === term ? user : null;
            });
          },
        });
      }
      const prefix = query.role === undefined
        ? usersByEmailPrefix()
        : usersByRolePrefix(query.role);
      return await scanPage<string, UserRecord>(kv, {
        prefix,
        tailLength: 1,
        cursor: query.cursor,
        limit: query.limit,
        resolve: records,
      });
    },
  };
}
