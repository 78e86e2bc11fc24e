import fc from "fast-check";
import { htmlToText, isPlainText, sanitizeRichText } from "../../../services/content/html.ts";
import { assert, assertEquals } from "../../_helpers/assert.ts";
import { XSS_VECTORS } from "../../_helpers/xss.ts";

/** What must never appear in sanitized output. */
const DANGEROUS = [
  /<script/i,
  /<svg/i,
  /<math/i,
  /<img/i,
  /<iframe/i,
  /<object/i,
  /<embed/i,
  /<style/i,
  /<form/i,
  /<input/i,
  /<meta/i,
  /<base/i,
  /<link/i,
  /<!--/,
  /\son\w+\s*=/i,
  /style\s*=/i,
  /javascript:/i,
  /vbscript:/i,
  /data:/i,
];

/** Every element and attribute left is on the allowlist, and links are https/mailto with rel. */
function assertHarmless(out: string, input: string): void {
  for (const pattern of DANGEROUS) {
    assert(!pattern.test(out), `${pattern} in ${out} (from ${input})`);
  }
  for (const tag of out.matchAll(/<\/?([a-z0-9]+)([^>]*)>/gi)) {
    const name = tag[1]!.toLowerCase();
    assert(
      ["b", "i", "em", "strong", "a", "p", "br", "ul", "ol", "li", "code", "blockquote"]
        .includes(name),
      `<${name}> kept from ${input}`,
    );
    const attrs = tag[2]!.replace(/\/$/, "").trim();
    if (tag[0].startsWith("</") || attrs === "") continue;
    assertEquals(name, "a", `attributes on <${name}> from ${input}`);
    assert(
      /^href="(https:\/\/|mailto:)[^"]*" rel="noopener noreferrer nofollow"$/.test(attrs),
      `link attributes ${attrs} from ${input}`,
    );
  }
}

Deno.test("sanitizeRichText() leaves every known XSS vector harmless", async (t) => {
  for (const vector of XSS_VECTORS) {
    await t.step(vector, () => assertHarmless(sanitizeRichText(vector), vector));
  }
});

Deno.test("sanitizeRichText() keeps the allowlist and safe links", async (t) => {
  await t.step("formatting survives", () => {
    const html =
      "<p><b>b</b> <i>i</i> <em>em</em> <strong>s</strong> <code>c</code></p><ul><li>1</li></ul><ol><li>2</li></ol><blockquote>q</blockquote>x<br />y";
    assertEquals(sanitizeRichText(html), html);
  });
  await t.step("https and mailto links get rel; their other attributes go", () => {
    assertEquals(
      sanitizeRichText(`<a href="https://ok.example/a?b=1" target="_blank" id="x">ok</a>`),
      `<a href="https://ok.example/a?b=1" rel="noopener noreferrer nofollow">ok</a>`,
    );
    assertEquals(
      sanitizeRichText(`<a href="mailto:me@example.com">m</a>`),
      `<a href="mailto:me@example.com" rel="noopener noreferrer nofollow">m</a>`,
    );
  });
  await t.step("an unsafe or relative link keeps its text only", () => {
    assertEquals(sanitizeRichText(`<a href="javascript:alert(1)">click</a>`), "click");
    assertEquals(sanitizeRichText(`<a href="http://plain.example">p</a>`), "p");
    assertEquals(sanitizeRichText(`<a href="/relative">r</a>`), "r");
  });
  await t.step("text is escaped, not interpreted", () => {
    assertEquals(sanitizeRichText("1 < 2 & 3 > 2"), "1 &lt; 2 &amp; 3 &gt; 2");
    assertEquals(htmlToText(sanitizeRichText("1 < 2 & <b>3</b>")), "1 < 2 & 3");
  });
});

Deno.test("sanitizeRichText() is idempotent: sanitizing twice changes nothing", () => {
  const fragment = fc.oneof(
    fc.string(),
    fc.constantFrom(...XSS_VECTORS),
    fc.constantFrom(
      "<b>",
      "</b>",
      '<a href="https://x.example">',
      "</a>",
      "<p>",
      "<br>",
      "&amp;",
      "&lt;",
      "<!--",
      "-->",
      "<svg>",
      '"',
      "'",
      "<",
      ">",
      "&",
      "&#x3c;",
      "<script>",
      "</li>",
    ),
  );
  fc.assert(
    fc.property(fc.array(fragment, { maxLength: 12 }).map((parts) => parts.join("")), (html) => {
      const once = sanitizeRichText(html);
      assertEquals(sanitizeRichText(once), once);
      assertHarmless(once, html);
    }),
    { numRuns: 500 },
  );
});

Deno.test("isPlainText() refuses control characters and bidi overrides", () => {
  assert(isPlainText("Ada Lovelace — ✓ 名前"));
  for (
    const bad of ["a\u0000b", "tab\there", "line\nbreak", "del\u007f", "\u202Eevil", "\u2066x"]
  ) {
    assert(!isPlainText(bad), JSON.stringify(bad));
  }
});
