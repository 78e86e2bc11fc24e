/**
 * Plain-text field check, apart from `html.ts` so that routes validating plain
 * text do not load sanitize-html at start-up.
 *
 * @module
 */

/** C0/C1 controls, DEL, and the invisible bidi overrides used to disguise text (Trojan Source). */
const FORBIDDEN_PLAIN = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;

/** True when `text` holds no control characters (tabs and newlines included) or bidi overrides. */
export function isPlainText(text: string): boolean {
  return !FORBIDDEN_PLAIN.test(text);
}
