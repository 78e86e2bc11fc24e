/**
 * User-written HTML (profile bios, note bodies) and plain-text fields. Rich text
 * goes through sanitize-html with a small allowlist before it is stored, so
 * every reader gets the same harmless markup (OWASP XSS Prevention Cheat Sheet,
 * rule 6: sanitize HTML markup with a library built for the job).
 *
 * sanitize-html costs ~70 ms to load, so services import this module on first
 * use (`await import`), not at start-up; `tests/server/startup_graph_test.ts`
 * keeps it out of the server's static graph.
 *
 * @module
 */
// @ts-types="@types/sanitize-html"
import sanitizeHtml from "sanitize-html";

export { isPlainText } from "./plain_text.ts";

/** Elements kept; everything else is dropped (its text kept, except for the discarded ones). */
export const ALLOWED_TAGS: readonly string[] = [
  "b",
  "i",
  "em",
  "strong",
  "a",
  "p",
  "br",
  "ul",
  "ol",
  "li",
  "code",
  "blockquote",
];

/** Links may point only at these schemes: no `javascript:`, `data:`, `vbscript:` or relative URLs. */
const ALLOWED_SCHEMES = ["https", "mailto"];

/** Always set on links: no `window.opener`, no referrer, no SEO credit for spam. */
const LINK_REL = "noopener noreferrer nofollow";

const OPTIONS: sanitizeHtml.IOptions = {
  allowedTags: [...ALLOWED_TAGS],
  allowedAttributes: { a: ["href", "rel"] },
  allowedSchemes: ALLOWED_SCHEMES,
  allowedSchemesByTag: {},
  allowedSchemesAppliedToAttributes: ["href"],
  allowProtocolRelative: false,
  allowedStyles: {},
  allowVulnerableTags: false,
  // Dropped with their content: script text or an SVG/MathML subtree is never shown as text.
  nonTextTags: [
    "script",
    "style",
    "textarea",
    "option",
    "noscript",
    "template",
    "svg",
    "math",
    "iframe",
    "object",
    "embed",
    "title",
    "xmp",
    "noembed",
    "noframes",
    "plaintext",
  ],
  disallowedTagsMode: "discard",
  parser: { lowerCaseTags: true, lowerCaseAttributeNames: true },
  transformTags: {
    // A link without a safe target becomes a disallowed element: its text stays, the link goes.
    a: (tagName, attribs) =>
      attribs.href !== undefined && isSafeHref(attribs.href)
        ? { tagName, attribs: { href: attribs.href, rel: LINK_REL } }
        : { tagName: "span", attribs: {} },
  },
};

/**
 * Our own check of a link target, besides sanitize-html's scheme filter: an absolute URL
 * (as a browser parses it, tabs and newlines stripped) with an allowed scheme.
 */
function isSafeHref(href: string): boolean {
  if (!URL.canParse(href.trim())) return false;
  const protocol = new URL(href.trim()).protocol;
  return ALLOWED_SCHEMES.some((scheme) => protocol === `${scheme}:`);
}

/**
 * Sanitizes user HTML to the allowlist: scripts, event handlers, `style`,
 * `javascript:`/`data:` URLs, SVG/MathML, comments and unknown elements
 * removed; links only to `https:`/`mailto:` with `rel="noopener noreferrer nofollow"`.
 * Applied until the output is stable, so sanitizing a sanitized text changes nothing.
 */
export function sanitizeRichText(html: string): string {
  let current = sanitizeHtml(html, OPTIONS);
  // sanitize-html is a single pass; re-parsing its own output can normalise once more
  // (entities, dropped empty links). A few passes reach the fixed point.
  for (let i = 0; i < 4; i++) {
    const next = sanitizeHtml(current, OPTIONS);
    if (next === current) return current;
    current = next;
  }
  return current;
}

const TEXT_ONLY: sanitizeHtml.IOptions = { allowedTags: [], allowedAttributes: {} };

/** The text of sanitized HTML, entities decoded (what a reader sees; used for search). */
export function htmlToText(html: string): string {
  return sanitizeHtml(html, TEXT_ONLY)
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&quot;", '"')
    .replaceAll("&amp;", "&");
}
