import { ConfigError } from "../../../services/config/config.ts";
import { ValidationError } from "../../../services/core/errors.ts";
import { contentDisposition, sanitizeFilename } from "../../../services/uploads/uploads.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "../../_helpers/assert.ts";
import { testConfig } from "../../_helpers/world.ts";

Deno.test("sanitizeFilename() keeps display text only", () => {
  assertEquals(sanitizeFilename("../../x/../evil.png"), "evil.png");
  assertEquals(sanitizeFilename("a\u202Egnp.exe"), "agnp.exe");
  assertEquals(sanitizeFilename(' <b>"q"<b>.pdf '), "_b__q__b_.pdf");
  assertEquals(sanitizeFilename("x".repeat(300) + ".zip").length, 200);
  assertThrows(() => sanitizeFilename("../.."), ValidationError);
});

Deno.test("contentDisposition() sends an ASCII fallback and an RFC 6266 filename*", () => {
  assertEquals(
    contentDisposition("résumé (1).pdf"),
    `attachment; filename="r_sum_ (1).pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%281%29.pdf`,
  );
});

Deno.test("UPLOAD_ALLOWED_EXTENSIONS cannot allow SVG, HTML, scripts or executables", () => {
  for (const ext of ["svg", "html", "js", "exe"]) {
    const error = assertThrows(
      () => testConfig({ UPLOAD_ALLOWED_EXTENSIONS: `png ${ext}` }),
      ConfigError,
    );
    assertMatch(error.message, /UPLOAD_ALLOWED_EXTENSIONS/);
  }
  assertEquals(testConfig({ UPLOAD_ALLOWED_EXTENSIONS: "PNG, pdf" }).uploadAllowedExtensions, [
    "png",
    "pdf",
  ]);
  assertEquals(testConfig({ DENO_DEPLOYMENT_ID: "x" }).uploadStore, "kv");
});

Deno.test("sanitizeFilename() cuts a 16 KiB adversarial name to 255 bytes before any regex (quadratic regex, #10 finding 5)", () => {
  const adversarial = "a" + " .".repeat(8 * 1024) + "x.png";
  const started = performance.now();
  const name = sanitizeFilename(adversarial);
  const ms = performance.now() - started;
  // The old `[\s.]+$` trim took ~250-500 ms here (and ~27 s at 64 KiB).
  assert(ms < 50, `${ms.toFixed(1)} ms`);
  assertMatch(name, /^a[ .]*\.png$/);
  assert(new TextEncoder().encode(name).byteLength <= 255);
  // Multi-byte names are cut on code points and keep their extension.
  const wide = sanitizeFilename("é".repeat(20_000) + ".pdf");
  assertMatch(wide, /^é+\.pdf$/);
  assert(new TextEncoder().encode(wide).byteLength <= 255);
});
