import { UnsupportedMediaTypeError } from "../../../services/core/errors.ts";
import { formatEndTracker } from "../../../services/uploads/format_end.ts";
import { assertEquals, assertMatch, assertThrows } from "../../_helpers/assert.ts";
import { concat, gif, jpeg, pdf, png, webp, zip } from "../../_helpers/files.ts";

/** Feeds `bytes` in chunks of `size` and finishes; throws what the tracker throws. */
function walk(mime: string, bytes: Uint8Array, size = bytes.byteLength || 1): void {
  const tracker = formatEndTracker(mime);
  if (tracker === null) throw new TypeError(`no tracker for ${mime}`);
  for (let at = 0; at < bytes.byteLength; at += size) tracker.push(bytes.subarray(at, at + size));
  tracker.finish();
}

const u8 = (...bytes: number[]) => new Uint8Array(bytes);

/**
 * A JPEG whose structure a naive "last FFD9" or "first FFD9" search gets wrong: an APP1 segment
 * holding FF D9, entropy-coded data with byte stuffing (FF 00), a restart marker and fill bytes.
 */
function structuredJpeg(): Uint8Array {
  return concat(
    u8(0xff, 0xd8),
    u8(0xff, 0xe1, 0x00, 0x08, 0x45, 0x78, 0xff, 0xd9, 0x00, 0x00), // APP1 with a fake EOI
    u8(0xff, 0xdb, 0x00, 0x04, 0x00, 0x01), // DQT (truncated table, length is what counts)
    u8(0xff, 0xda, 0x00, 0x04, 0x01, 0x00), // SOS
    u8(0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56, 0xff, 0xff), // entropy data, RST0, fill
    u8(0xd9), // EOI (after the fill byte)
  );
}

const FORMATS: [string, string, () => Uint8Array][] = [
  ["PNG", "image/png", () => png()],
  ["JPEG", "image/jpeg", jpeg],
  ["JPEG with segments, stuffing and restarts", "image/jpeg", structuredJpeg],
  ["GIF", "image/gif", gif],
  ["WebP", "image/webp", webp],
  ["PDF", "application/pdf", pdf],
];

Deno.test("formatEndTracker() accepts files that end where their format ends", async (t) => {
  for (const [label, mime, make] of FORMATS) {
    await t.step(`${label}, whole and byte by byte`, () => {
      walk(mime, make());
      walk(mime, make(), 1);
      walk(mime, make(), 7);
    });
  }
  await t.step("a PDF with an incremental update and trailing whitespace", () => {
    const update = new TextEncoder().encode("1 0 obj << >> endobj\ntrailer << >>\n%%EOF\r\n \0");
    walk("application/pdf", concat(pdf(), update), 3);
  });
  await t.step("a PNG padded by a large private chunk (nothing kept while skipping it)", () => {
    walk("image/png", png({ minBytes: 3 * 1024 * 1024 }), 64 * 1024);
  });
});

Deno.test("formatEndTracker() refuses data after the end (polyglot archive bypass)", async (t) => {
  const appended = await zip([{ name: "../evil.txt", data: "pwned" }]);
  for (const [label, mime, make] of FORMATS) {
    await t.step(`${label} + zip + one trailing byte`, () => {
      const bytes = concat(make(), appended, u8(0x0a));
      for (const size of [bytes.byteLength, 1, 13]) {
        const error = assertThrows(() => walk(mime, bytes, size), UnsupportedMediaTypeError);
        assertMatch(error.message, /after the end|does not match/);
      }
    });
    await t.step(`${label} + one byte`, () => {
      assertThrows(() => walk(mime, concat(make(), u8(0x42))), UnsupportedMediaTypeError);
    });
    await t.step(`${label} truncated by two bytes`, () => {
      const bytes = make();
      assertThrows(() => walk(mime, bytes.subarray(0, -2)), UnsupportedMediaTypeError);
    });
  }
  await t.step("JPEG: the end is the EOI a decoder sees, not one inside a segment", () => {
    const bytes = structuredJpeg();
    // Cut right after the fake EOI inside APP1: the walk must still be inside the file.
    assertThrows(() => walk("image/jpeg", bytes.subarray(0, 8)), UnsupportedMediaTypeError);
  });
  await t.step("PDF: only PDF whitespace may follow the last %%EOF", () => {
    const bytes = concat(pdf(), new TextEncoder().encode("PK\x03\x04"));
    assertThrows(() => walk("application/pdf", bytes), UnsupportedMediaTypeError);
  });
  await t.step("a PNG chunk length past 2^31 is malformed", () => {
    const bytes = concat(png().subarray(0, 8), u8(0x80, 0, 0, 0, 0x70, 0x72, 0x56, 0x74));
    assertThrows(() => walk("image/png", bytes), UnsupportedMediaTypeError);
  });
  await t.step("GIF: an unknown block introducer is malformed", () => {
    const bytes = gif();
    bytes[bytes.byteLength - 1] = 0x42;
    assertThrows(() => walk("image/gif", bytes), UnsupportedMediaTypeError);
  });
});

Deno.test("formatEndTracker() has no tracker for zip (its reader refuses appended data)", () => {
  assertEquals(formatEndTracker("application/zip"), null);
});
