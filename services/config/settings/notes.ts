/**
 * Settings of notes.
 * Spread into `SETTINGS` by `../settings.ts`, whose header says how to add a setting.
 *
 * @module
 */
import { positiveInt, setting } from "../declaration.ts";

/** Settings of notes. */
export const NOTE_SETTINGS = {
  MAX_NOTES_PER_USER: setting({
    schema: positiveInt.max(100_000).default(1000),
    doc:
      "Notes one user may hold (409 `limit_reached` beyond it); keeps a search of one user's notes bounded.",
    show: (c) => c.maxNotesPerUser,
  }),
};
