import { ConfigError } from "../../../services/config/config.ts";
import { ValidationError } from "../../../services/core/errors.ts";
import { contentDisposition, sanitizeFilename } from "../../../services/uploads/uploads.ts";
import { assertEquals, assertMatch, assertThrows } from "../../_helpers/assert.ts";
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
