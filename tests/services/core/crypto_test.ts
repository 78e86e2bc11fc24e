import { assertEquals } from "../../_helpers/assert.ts";
import { randomSecret, timingSafeEqual } from "../../../services/core/crypto.ts";

Deno.test("timingSafeEqual() answers exactly string equality", async (t) => {
  const secret = randomSecret();

  await t.step("the same value", () => {
    assertEquals(timingSafeEqual(secret, `${secret}`), true);
    assertEquals(timingSafeEqual("", ""), true);
  });

  await t.step("one byte changed anywhere, first to last", () => {
    for (let i = 0; i < secret.length; i++) {
      const flipped = secret.slice(0, i) + (secret[i] === "A" ? "B" : "A") + secret.slice(i + 1);
      assertEquals(timingSafeEqual(secret, flipped), false, `position ${i}`);
    }
  });

  await t.step("a prefix, an extension or an empty string", () => {
    assertEquals(timingSafeEqual(secret, secret.slice(0, -1)), false);
    assertEquals(timingSafeEqual(secret, `${secret}x`), false);
    assertEquals(timingSafeEqual(secret, ""), false);
  });

  await t.step("multibyte text is compared by its UTF-8 bytes", () => {
    assertEquals(timingSafeEqual("é", "é"), true);
    // Same UTF-16 length, different bytes; and "é" vs "e\u0301" differ in length.
    assertEquals(timingSafeEqual("é", "è"), false);
    assertEquals(timingSafeEqual("é", "e\u0301"), false);
    assertEquals(timingSafeEqual("\u00ff", "\u0100"), false);
  });
});
