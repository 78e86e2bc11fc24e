/**
 * Notes: an owned resource. Ownership is decided here, through the policy
 * module, on the record as stored — never from anything the client sends — so
 * every path (HTTP, a future importer) gets the same check.
 *
 * @module
 */
import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { Clock } from "../core/clock.ts";
import { randomId } from "../core/crypto.ts";
import {
  ConflictError,
  LimitReachedError,
  NotFoundError,
  ValidationError,
} from "../core/errors.ts";
import { commitOrRetry, getManyChunked, RETRY, retryOnConflict } from "../core/kv.ts";
import {
  noteByIdKey,
  noteByTimeKey,
  noteCountKey,
  noteKey,
  notesByTimePrefix,
  notesOfOwnerPrefix,
} from "../core/kv_keys.ts";
import {
  compareKeys,
  decodeCursor,
  encodeCursor,
  type Page,
  scanPage,
} from "../core/pagination.ts";
import { createNoteSearchCache, type SearchEntry } from "./search_cache.ts";
import { type Actor, authorize } from "../auth/policy.ts";

/** A stored note. */
export interface NoteRecord {
  id: string;
  owner_id: string;
  title: string;
  /** Sanitized HTML. */
  body: string;
  /** Lowercased title and body text, for the literal substring search. */
  search_text: string;
  /** Creation order within the indexes (time, then a per-instance sequence). */
  sort_key: string;
  created_at: string;
  updated_at: string;
}

/** A note as clients see it. */
export interface NoteView {
  id: string;
  owner_id: string;
  title: string;
  body: string;
  created_at: string;
  updated_at: string;
}

/** A listing request. */
export interface NoteQuery {
  /** Literal, case-insensitive substring of the title or body text. */
  q?: string | undefined;
  cursor?: string | undefined;
  /** 1-100. */
  limit: number;
  /** Everyone's notes (needs `notes:moderate`). */
  all?: boolean;
}

/** Notes CRUD with ownership checks, search and cursor pagination. */
export interface NoteService {
  /**
   * @throws {LimitReachedError} when the owner holds `maxPerUser` notes
   * @throws {ForbiddenError} | {InsufficientScopeError} from the policy
   */
  create(actor: Actor, input: { title: string; body: string }): Promise<NoteView>;
  /**
   * @throws {NotFoundError} for an unknown id
   * @throws {ForbiddenError} for another user's note without `notes:moderate`
   */
  get(actor: Actor, noteId: string): Promise<NoteView>;
  /** @throws as {@linkcode NoteService.get} */
  update(
    actor: Actor,
    noteId: string,
    patch: { title?: string | undefined; body?: string | undefined },
    meta: RequestMeta,
  ): Promise<NoteView>;
  /** @throws as {@linkcode NoteService.get} */
  delete(actor: Actor, noteId: string, meta: RequestMeta): Promise<void>;
  /** Newest first. @throws {ForbiddenError} for `all` without `notes:moderate` */
  list(actor: Actor, query: NoteQuery): Promise<Page<NoteView>>;
}

/** Dependencies of {@linkcode createNoteService}. */
export interface NoteDeps {
  kv: Deno.Kv;
  clock: Clock;
  audit: AuditService;
  /** Notes one user may hold. @default 1000 */
  maxPerUser?: number;
}

/** Longest note body accepted, in characters, before sanitizing. */
export const MAX_NOTE_BODY = 8000;

interface NotePointer {
  owner_id: string;
  sort_key: string;
}

function view(note: NoteRecord): NoteView {
  return {
    id: note.id,
    owner_id: note.owner_id,
    title: note.title,
    body: note.body,
    created_at: note.created_at,
    updated_at: note.updated_at,
  };
}

/**
 * Sanitizes a body and derives the search text. Escaping can lengthen a text; the
 * result is bounded so a record stays well inside KV's 64 KiB value limit.
 */
async function content(
  title: string,
  body: string,
): Promise<{ body: string; search_text: string }> {
  // sanitize-html loads on the first note written, not at start-up.
  const { htmlToText, sanitizeRichText } = await import("../content/html.ts");
  const clean = sanitizeRichText(body);
  if (clean.length > 2 * MAX_NOTE_BODY) {
    throw new ValidationError("Request validation failed", {
      errors: [{ path: "body", message: "Too long once sanitized" }],
    });
  }
  return { body: clean, search_text: `${title}\n${htmlToText(clean)}`.toLowerCase() };
}

/** Creates the note service. */
export function createNoteService(deps: NoteDeps): NoteService {
  const { kv, clock, audit } = deps;
  const maxPerUser = deps.maxPerUser ?? 1000;
  let sequence = 0;
  const cache = createNoteSearchCache();

  async function read(noteId: string): Promise<Deno.KvEntry<NoteRecord>> {
    const pointer = await kv.get<NotePointer>(noteByIdKey(noteId));
    if (pointer.value !== null) {
      const entry = await kv.get<NoteRecord>(
        noteKey(pointer.value.owner_id, pointer.value.sort_key, noteId),
      );
      if (entry.value !== null) return entry as Deno.KvEntry<NoteRecord>;
    }
    throw new NotFoundError("No such note");
  }

  async function moderated(
    actor: Actor,
    note: NoteRecord,
    action: "update" | "delete",
    meta: RequestMeta,
  ): Promise<void> {
    if (note.owner_id === actor.userId) return;
    await audit.record({
      type: "note.moderated",
      outcome: "success",
      userId: actor.userId,
      targetUserId: note.owner_id,
      meta,
      details: { note_id: note.id, action },
    });
  }

  /**
   * One owner's notes matching `needle`, newest first: the match runs over the cached
   * search texts (current as of the owner's counter), then only the page's records are read.
   */
  async function search(
    ownerId: string,
    needle: string,
    query: NoteQuery,
  ): Promise<Page<NoteView>> {
    const counter = await kv.get<number>(noteCountKey(ownerId));
    const entries = await cache.entries(ownerId, counter.versionstamp, async () => {
      const out: SearchEntry[] = [];
      const iter = kv.list<NoteRecord>({ prefix: notesOfOwnerPrefix(ownerId) }, {
        reverse: true,
        batchSize: 1000,
      });
      for await (const e of iter) {
        out.push({ sortKey: e.value.sort_key, id: e.value.id, text: e.value.search_text });
      }
      return out;
    });
    const after = query.cursor === undefined ? null : decodeCursor(query.cursor, 2);
    const hits: SearchEntry[] = [];
    for (const e of entries) {
      if (after !== null && compareKeys([e.sortKey, e.id], after) >= 0) continue;
      if (!e.text.includes(needle)) continue;
      hits.push(e);
      if (hits.length > query.limit) break;
    }
    const page = hits.slice(0, query.limit);
    const records = await getManyChunked<NoteRecord>(
      kv,
      page.map((e) => noteKey(ownerId, e.sortKey, e.id)),
    );
    const last = page.at(-1);
    return {
      // A note deleted since the texts were read is skipped, never shown from the cache.
      items: records.flatMap((r) => r.value === null ? [] : [view(r.value)]),
      next_cursor: hits.length > query.limit && last !== undefined
        ? encodeCursor([last.sortKey, last.id])
        : null,
    };
  }

  return {
    async create(actor, input) {
      authorize(actor, "notes:create");
      const now = clock.now();
      const sortKey = now.getTime().toString(36).padStart(10, "0") +
        (sequence++ % 36 ** 6).toString(36).padStart(6, "0");
      const note: NoteRecord = {
        id: randomId(),
        owner_id: actor.userId,
        title: input.title,
        ...await content(input.title, input.body),
        sort_key: sortKey,
        created_at: now.toISOString(),
        updated_at: now.toISOString(),
      };
      await retryOnConflict(async (attempt) => {
        const count = await kv.get<number>(noteCountKey(actor.userId));
        if ((count.value ?? 0) >= maxPerUser) {
          throw new LimitReachedError(`Cannot create note: at most ${maxPerUser} notes per user`);
        }
        const op = kv.atomic()
          .check(count)
          .check({ key: noteByIdKey(note.id), versionstamp: null })
          .set(noteKey(note.owner_id, note.sort_key, note.id), note)
          .set(noteByIdKey(note.id), { owner_id: note.owner_id, sort_key: note.sort_key })
          .set(noteByTimeKey(note.sort_key, note.id), note.owner_id)
          .set(noteCountKey(actor.userId), (count.value ?? 0) + 1);
        return await commitOrRetry(op, attempt);
      }, { exhausted: () => new ConflictError("Cannot create note: too many concurrent changes") });
      return view(note);
    },

    async get(actor, noteId) {
      const { value: note } = await read(noteId);
      authorize(actor, "notes:read", { ownerId: note.owner_id });
      return view(note);
    },

    async update(actor, noteId, patch, meta) {
      const updated = await retryOnConflict(async (attempt) => {
        const entry = await read(noteId);
        const note = entry.value;
        authorize(actor, "notes:update", { ownerId: note.owner_id });
        const title = patch.title ?? note.title;
        const next: NoteRecord = {
          ...note,
          title,
          ...(patch.body === undefined && patch.title === undefined
            ? {}
            : await content(title, patch.body ?? note.body)),
          updated_at: clock.now().toISOString(),
        };
        // The owner's counter is re-set, unchanged, so its versionstamp marks this change too.
        const count = await kv.get<number>(noteCountKey(note.owner_id));
        const op = kv.atomic().check(entry).check(count).set(entry.key, next)
          .set(noteCountKey(note.owner_id), count.value ?? 1);
        return (await commitOrRetry(op, attempt)) === RETRY ? RETRY : next;
      }, { exhausted: () => new ConflictError("Cannot update note: too many concurrent changes") });
      await moderated(actor, updated, "update", meta);
      return view(updated);
    },

    async delete(actor, noteId, meta) {
      const deleted = await retryOnConflict(async (attempt) => {
        const entry = await read(noteId);
        const note = entry.value;
        authorize(actor, "notes:delete", { ownerId: note.owner_id });
        const count = await kv.get<number>(noteCountKey(note.owner_id));
        const op = kv.atomic()
          .check(entry)
          .check(count)
          .delete(entry.key)
          .delete(noteByIdKey(note.id))
          .delete(noteByTimeKey(note.sort_key, note.id))
          .set(noteCountKey(note.owner_id), Math.max(0, (count.value ?? 1) - 1));
        return (await commitOrRetry(op, attempt)) === RETRY ? RETRY : note;
      }, { exhausted: () => new ConflictError("Cannot delete note: too many concurrent changes") });
      await moderated(actor, deleted, "delete", meta);
    },

    async list(actor, query) {
      const needle = query.q === undefined || query.q === "" ? null : query.q.toLowerCase();
      // `includes`, never a pattern: %, _, *, regex and quotes are plain characters.
      const matches = (note: NoteRecord) => needle === null || note.search_text.includes(needle);
      if (query.all === true) {
        authorize(actor, "notes:list_all");
        return await scanPage<string, NoteView>(kv, {
          prefix: notesByTimePrefix(),
          tailLength: 2,
          reverse: true,
          cursor: query.cursor,
          limit: query.limit,
          resolve: async (entries) => {
            const records = await getManyChunked<NoteRecord>(
              kv,
              entries.map((e) => noteKey(e.value, String(e.key[1]), String(e.key[2]))),
            );
            return records.map((r) => r.value !== null && matches(r.value) ? view(r.value) : null);
          },
        });
      }
      authorize(actor, "notes:list");
      if (needle !== null) return await search(actor.userId, needle, query);
      return await scanPage<NoteRecord, NoteView>(kv, {
        prefix: notesOfOwnerPrefix(actor.userId),
        tailLength: 2,
        reverse: true,
        cursor: query.cursor,
        limit: query.limit,
        // The per-user cap bounds this scan: one page can always search every note.
        maxScan: Math.max(maxPerUser, query.limit),
        resolve: (entries) =>
          Promise.resolve(entries.map((e) => matches(e.value) ? view(e.value) : null)),
      });
    },
  };
}
