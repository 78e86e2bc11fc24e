import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../middleware/app_env.ts";
import { requestMeta, requireAuth, requirePrincipal } from "../middleware/auth.ts";
import { validate } from "../middleware/validate.ts";
import { isPlainText } from "../services/content/plain_text.ts";
import { MAX_NOTE_BODY } from "../services/notes/notes.ts";
import type { Deps, Services } from "./deps.ts";
import { Cursor, IdParam, jsonResponse, Limit, pageOf, route, type RouteSpec } from "./_route.ts";

const Title = z.string().trim().min(1).max(200)
  .refine(isPlainText, "Must not contain control characters");
const Body = z.string().max(MAX_NOTE_BODY).describe(
  "HTML; sanitized to b i em strong a p br ul ol li code blockquote (links https/mailto only)",
);

const CreateBody = z.strictObject({ title: Title, body: Body });
const PatchBody = z.strictObject({ title: Title.optional(), body: Body.optional() })
  .refine((b) => Object.keys(b).length > 0, "Give at least one field");
const ListQuery = z.strictObject({
  q: z.string().max(200).optional().describe(
    "Literal, case-insensitive substring of the title or body text; no wildcards",
  ),
  cursor: Cursor,
  limit: Limit,
  all: z.enum(["true", "false"]).optional().describe("Everyone's notes (notes:moderate)"),
});

const NoteOut = z.object({
  id: z.string(),
  owner_id: z.string(),
  title: z.string(),
  body: z.string(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
});

function doc(summary: string, responses: RouteSpec["responses"]) {
  return route({ summary, tags: ["notes"], auth: "bearer_or_api_key", responses });
}

/** `/notes`: notes owned by their author; the note service checks ownership. */
export function noteRoutes(_deps: Deps, services: Services): Hono<AppEnv> {
  const { notes } = services;
  return new Hono<AppEnv>()
    // 401 before any input is judged; each action's right is decided by the note service.
    .use(requireAuth())
    .post(
      "/",
      doc("Create a note", { 201: jsonResponse(NoteOut, "Created") }),
      validate("json", CreateBody),
      async (c) => {
        const note = await notes.create(requirePrincipal(c), c.req.valid("json"));
        c.header("Location", `/notes/${note.id}`);
        return c.json(note, 201);
      },
    )
    .get(
      "/",
      doc("List my notes, newest first (`all=true`: everyone's, for moderators)", {
        200: jsonResponse(pageOf(NoteOut), "A page of notes"),
      }),
      validate("query", ListQuery),
      async (c) => {
        const query = c.req.valid("query");
        return c.json(
          await notes.list(requirePrincipal(c), {
            q: query.q,
            cursor: query.cursor,
            limit: query.limit ?? 20,
            all: query.all === "true",
          }),
        );
      },
    )
    .get(
      "/:id",
      doc("Read a note (owner or moderator)", { 200: jsonResponse(NoteOut, "The note") }),
      validate("param", IdParam),
      async (c) => c.json(await notes.get(requirePrincipal(c), c.req.valid("param").id)),
    )
    .patch(
      "/:id",
      doc("Update a note (owner or moderator)", { 200: jsonResponse(NoteOut, "Updated") }),
      validate("param", IdParam),
      validate("json", PatchBody),
      async (c) =>
        c.json(
          await notes.update(
            requirePrincipal(c),
            c.req.valid("param").id,
            c.req.valid("json"),
            requestMeta(c),
          ),
        ),
    )
    .delete(
      "/:id",
      doc("Delete a note (owner or moderator)", { 204: { description: "Deleted" } }),
      validate("param", IdParam),
      async (c) => {
        await notes.delete(requirePrincipal(c), c.req.valid("param").id, requestMeta(c));
        return c.body(null, 204);
      },
    );
}
