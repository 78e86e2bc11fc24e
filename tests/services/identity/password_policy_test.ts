import fc from "fast-check";
import { assert, assertEquals, assertRejects } from "../../_helpers/assert.ts";
import { PasswordPolicyError } from "../../../services/core/errors.ts";
import { loadZxcvbnOptions } from "../../../services/identity/password_policy.ts";
import { testPolicy } from "../../_helpers/world.ts";

const LENGTH = "Password must be at least 8 characters";
const BYTES = "Password must be at most 72 bytes in UTF-8";
const UPPER = "Password must contain an uppercase letter";
const LOWER = "Password must contain a lowercase letter";
const DIGIT = "Password must contain a digit";
const SPECIAL = "Password must contain a special character";
const WEAK = "Password is too easy to guess";

/** Random-looking, strong, every class present. */
const STRONG = "kV9#mQ2$zL7!pX4w";

async function messages(password: string, userInputs?: readonly string[]): Promise<string[]> {
  return (await testPolicy().check(password, userInputs)).map((e) => e.message);
}

function isWeak(message: string): boolean {
  return message.startsWith(WEAK);
}

Deno.test("check() accepts a strong password with every character class", async () => {
  assertEquals(await testPolicy().check(STRONG), []);
  assertEquals(await testPolicy().check("Kv9#mQ2$zL7!pX4w\u00e9\u00df\u20ac"), []);
});

Deno.test("check() enforces a minimum of 8 characters", async (t) => {
  await t.step("7 characters fail", async () => {
    assert((await messages("Aa1!xyz")).includes(LENGTH));
  });
  await t.step("8 characters pass the length rule", async () => {
    assert(!(await messages("Jq8$Wz2!")).includes(LENGTH));
  });
  await t.step(
    "length counts code points, not UTF-16 units (7 code points, 10 units)",
    async () => {
      const password = "Aa1!\u{1F600}\u{1F600}\u{1F600}";
      assertEquals(password.length, 10);
      assert((await messages(password)).includes(LENGTH));
      assert(!(await messages("Ab1!\u{1F600}\u{1F600}\u{1F600}\u{1F600}")).includes(LENGTH));
    },
  );
  await t.step("length is counted after NFKC (e + U+0301 composes to one character)", async () => {
    const password = "Ab1!e\u0301e\u0301"; // 8 code points typed, 6 after NFKC
    assertEquals([...password].length, 8);
    assert((await messages(password)).includes(LENGTH));
  });
});

Deno.test("check() enforces bcrypt's 72-byte limit in UTF-8", async (t) => {
  await t.step("25 x '€' is 25 characters but 75 bytes", async () => {
    const password = "\u20ac".repeat(25);
    assertEquals(new TextEncoder().encode(password).byteLength, 75);
    assert((await messages(password)).includes(BYTES));
  });
  await t.step("73 bytes with every class present fails on bytes alone", async () => {
    const password = `Aa1!${"\u20ac".repeat(23)}`; // 4 + 69 bytes
    assertEquals(await messages(password), [BYTES]);
  });
  await t.step("exactly 72 bytes is accepted", async () => {
    const password = `Aa1!${"\u20ac".repeat(22)}xy`; // 4 + 66 + 2 bytes
    assertEquals(new TextEncoder().encode(password).byteLength, 72);
    assertEquals(await messages(password), []);
  });
  await t.step("73 ASCII bytes fail", async () => {
    assert((await messages(`${STRONG}${"Zq7!".repeat(15)}x`)).includes(BYTES));
  });
});

Deno.test("check() requires each character class", async (t) => {
  await t.step("uppercase", async () => assertEquals(await messages("kv9#mq2$zl7!px4w"), [UPPER]));
  await t.step("lowercase", async () => assertEquals(await messages("KV9#MQ2$ZL7!PX4W"), [LOWER]));
  await t.step("digit", async () => assertEquals(await messages("kVx#mQq$zLr!pXsw"), [DIGIT]));
  await t.step("special", async () => assertEquals(await messages("kV9mQ2zL7pX4wR8t"), [SPECIAL]));
  await t.step("non-ASCII letters, digits and symbols count", async () => {
    // Ü upper, ï lower, '€' special (a currency symbol), Arabic-Indic digit ٣.
    assertEquals(await messages("\u00dcnv\u00efqz\u20acw\u0663rtkx"), []);
  });
});

Deno.test("check() refuses passwords zxcvbn scores below 3", async (t) => {
  await t.step("a common password with every class", async () => {
    const found = await messages("Password1!");
    assertEquals(found.length, 1);
    assert(isWeak(found[0]!), String(found[0]));
  });
  await t.step("the email and display name make a password weak", async () => {
    const password = "Quaxworth#2019";
    assertEquals(await messages(password), []);
    const found = await messages(password, ["zebulon.quaxworth@example.com", "Zebulon Quaxworth"]);
    assertEquals(found.length, 1);
    assert(isWeak(found[0]!), String(found[0]));
  });
  await t.step("the display name alone makes a password weak", async () => {
    const password = "Xq7!Vombatiroxa";
    assertEquals(await messages(password), []);
    assert((await messages(password, ["Vombatiroxa Smith"])).some(isWeak));
  });
  await t.step("a part of the email's local part counts on its own", async () => {
    assert((await messages("Quaxworth#2019", ["zebulon.quaxworth@example.com"])).some(isWeak));
  });
});

Deno.test("check() lists every broken rule at once", async (t) => {
  await t.step("empty password", async () => {
    const found = await messages("");
    assertEquals(found.slice(0, 5), [LENGTH, UPPER, LOWER, DIGIT, SPECIAL]);
    assertEquals(found.length, 6);
    assert(isWeak(found[5]!));
  });
  await t.step("'abc'", async () => {
    const found = await messages("abc");
    assertEquals(found.slice(0, 4), [LENGTH, UPPER, DIGIT, SPECIAL]);
    assert(isWeak(found[4]!));
  });
  await t.step("25 x '€': bytes and three classes", async () => {
    assertEquals(await messages("\u20ac".repeat(25)), [BYTES, UPPER, LOWER, DIGIT]);
  });
  await t.step("every error has path 'password'", async () => {
    for (const error of await testPolicy().check("")) assertEquals(error.path, "password");
  });
});

Deno.test("assert() throws PasswordPolicyError with code password_policy and every error", async (t) => {
  await t.step("weak password", async () => {
    const error = await assertRejects(() => testPolicy().assert("abc"), PasswordPolicyError);
    assertEquals(error.code, "password_policy");
    assertEquals(error.errors, await testPolicy().check("abc"));
  });
  await t.step("a custom path is used on every error", async () => {
    const error = await assertRejects(
      () => testPolicy().assert("", [], "new_password"),
      PasswordPolicyError,
    );
    assertEquals(error.errors?.length, 6);
    for (const e of error.errors ?? []) assertEquals(e.path, "new_password");
  });
  await t.step("user inputs are passed through", async () => {
    const error = await assertRejects(
      () => testPolicy().assert("Quaxworth#2019", ["Zebulon Quaxworth"]),
      PasswordPolicyError,
    );
    assert(error.errors?.some((e) => isWeak(e.message)));
  });
  await t.step("a good password does not throw", async () => {
    await testPolicy().assert(STRONG, ["someone@example.com", "Some One"]);
  });
});

/** Lone surrogates as well as every code point. */
const anyUnit = fc.oneof(
  fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
);

const passwords = fc.oneof(
  fc.string({ maxLength: 100 }),
  fc.string({ unit: "binary", maxLength: 100 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: anyUnit, maxLength: 100 }),
);

Deno.test("check() never throws and always returns a list of password errors", async () => {
  await fc.assert(
    fc.asyncProperty(
      passwords,
      fc.array(fc.string({ unit: "binary" }), { maxLength: 3 }),
      async (pw, inputs) => {
        const errors = await testPolicy().check(pw, inputs);
        assert(Array.isArray(errors));
        for (const error of errors) {
          assertEquals(error.path, "password");
          assert(typeof error.message === "string" && error.message.startsWith("Password "));
        }
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("assert() throws exactly when check() reports errors", async () => {
  await fc.assert(
    fc.asyncProperty(passwords, async (pw) => {
      const expected = await testPolicy().check(pw);
      let thrown: unknown;
      try {
        await testPolicy().assert(pw);
      } catch (error) {
        thrown = error;
      }
      if (expected.length === 0) {
        assertEquals(thrown, undefined);
      } else {
        assert(thrown instanceof PasswordPolicyError);
        assertEquals(thrown.errors, expected);
      }
    }),
    { numRuns: 100 },
  );
});

Deno.test("loadZxcvbnOptions() gives the language packages' own lists, graphs and messages", async () => {
  const [ours, common, en] = await Promise.all([
    loadZxcvbnOptions(),
    import("@zxcvbn-ts/language-common"),
    import("@zxcvbn-ts/language-en"),
  ]);
  const stock: Record<string, unknown[]> = { ...common.dictionary, ...en.dictionary };
  assertEquals(Object.keys(ours.dictionary).sort(), Object.keys(stock).sort());
  for (const [name, words] of Object.entries(stock)) {
    const mine = ours.dictionary[name] ?? [];
    // Same words in the same order: a word's rank is its position.
    assertEquals(mine.length, words.length, name);
    const first = mine.findIndex((word, i) => word !== words[i]);
    assertEquals(first, -1, `${name}: first difference at ${first}`);
  }
  assertEquals(ours.graphs, common.adjacencyGraphs);
  assertEquals(ours.translations, en.translations);
});
