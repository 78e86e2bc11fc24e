import { assert, assertEquals, assertMatch, assertRejects } from "../../_helpers/assert.ts";
import {
  BCRYPT_MAX_BYTES,
  type BcryptBackend,
  createBcryptHasher,
  type PasswordHasher,
} from "../../../services/identity/password_hasher.ts";

/**
 * Published bcrypt vectors whose plaintexts are valid, NFKC-stable UTF-8 of at most 72 bytes.
 * Sources: passlib 1.7.4 `passlib/tests/test_handlers_bcrypt.py` (JTR 1.7.9, Openwall
 * crypt_blowfish 1.2, py-bcrypt) and pyca/bcrypt `tests/test_bcrypt.py` (`$2b$04$` set).
 * Each was re-checked with Debian's python3-bcrypt 3.2.2 `checkpw`.
 */
const VECTORS: readonly (readonly [password: string, hash: string])[] = [
  // JTR 1.7.9
  ["U*U*U*U*", "$2a$05$c92SVSfjeiCD6F2nAD6y0uBpJDjdRkt0EgeC4/31Rf2LUZbDRDE.O"],
  ["U*U***U", "$2a$05$WY62Xk2TXZ7EvVDQ5fmjNu7b0GEzSzUXUh2cllxJwhtOeMtWV3Ujq"],
  ["U*U***U*", "$2a$05$Fa0iKV3E2SYVUlMknirWU.CFYGvJ67UwVKI1E2FP6XeLiZGcH3MJi"],
  ["*U*U*U*U", "$2a$05$.WRrXibc1zPgIdRXYfv.4uu6TD1KWf0VnHzq/0imhUhuxSxCyeBs2"],
  ["", "$2a$05$Otz9agnajgrAe0.kFVF9V.tzaStZ2s1s4ZWi/LY4sw2k/MTVFj/IO"],
  // Openwall crypt_blowfish 1.2
  ["U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"],
  ["U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"],
  ["U*U*U", "$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a"],
  ["", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy"],
  // crypt_blowfish "8-bit bug" vector, $2y$ (U+0451 CYRILLIC SMALL LETTER IO = d1 91)
  ["\u0451", "$2y$05$6bNw2HLQYeqHYyBfLMsv/OUcZd0LKP39b87nBw3.S2tVZSqiQX6eu"],
  // py-bcrypt
  ["", "$2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s."],
  ["abc", "$2a$10$WvvTPHKwdBJ3uk0Z37EMR.hLA2W6N9AEBhEgrAOljy2Ae5MtaSIUi"],
  [
    "~!@#$%^&*()      ~!@#$%^&*()PNBFRD",
    "$2a$10$LgfYWkbzEvQ4JakH7rOvHe0y8pHKF9OaFgwUZ2q7W2FFZmZzJYlfS",
  ],
  // pyca/bcrypt
  ["Kk4DQuMMfZL9o", "$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm"],
  ["9IeRXmnGxMYbs", "$2b$04$pQ7gRO7e6wx/936oXhNjrOUNOHL1D0h1N2IDbJZYs.1ppzSof6SPy"],
  ["xVQVbwa1S0M8r", "$2b$04$SQe9knOzepOVKoYXo9xTteNYr6MBwVz4tpriJVe3PNgYufGIsgKcW"],
  ["Zfgr26LWd22Za", "$2b$04$eH8zX.q5Q.j2hO1NkVYJQOM6KxntS/ow3.YzVmFrE4t//CoF4fvne"],
];

/** Openwall vector whose plaintext is 98 bytes; reference bcrypt ignores everything after 72. */
const LONG_VECTOR = {
  password: "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" +
    "chars after 72 are ignored",
  hash: "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui",
};

/** passlib's UPASS_TABLE vector: "táБℓə"; U+2113 SCRIPT SMALL L is "l" under NFKC. */
const NON_NFKC_VECTOR = {
  password: "t\u00e1\u0411\u2113\u0259",
  hash: "$2a$05$Z17AXnnlpzddNUvnC6cZNOSwMA/8oNiKnHTHTwLlBijfucQQlHjaG",
};

const PYTHON = "/usr/bin/python3";

function pythonHasBcrypt(): boolean {
  try {
    const probe = new Deno.Command(PYTHON, {
      args: ["-c", "import bcrypt, passlib.context"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return probe.success;
  } catch {
    return false;
  }
}

const HAS_PYTHON_BCRYPT = pythonHasBcrypt();
const PYTHON_IGNORED = HAS_PYTHON_BCRYPT ? "" : " (ignored: /usr/bin/python3 lacks bcrypt/passlib)";

/** Runs a Python snippet that reads one JSON object from stdin and prints its answer. */
async function python(script: string, input: Record<string, unknown>): Promise<string> {
  const child = new Deno.Command(PYTHON, {
    args: ["-c", `import json, sys\ndata = json.load(sys.stdin)\n${script}`],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(input)));
  await writer.close();
  const { success, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  if (!success) throw new Error(`python failed: ${decoder.decode(stderr)}`);
  return decoder.decode(stdout).trim();
}

const PY_BCRYPT_HASH =
  `import bcrypt\nprint(bcrypt.hashpw(data["password"].encode("utf-8"), bcrypt.gensalt(data["rounds"])).decode())`;
const PY_BCRYPT_CHECK =
  `import bcrypt\nprint(bcrypt.checkpw(data["password"].encode("utf-8"), data["hash"].encode()))`;
const PY_PASSLIB_HASH =
  `from passlib.context import CryptContext\nctx = CryptContext(schemes=["bcrypt"], bcrypt__rounds=data["rounds"])\nprint(ctx.hash(data["password"]))`;
const PY_PASSLIB_CHECK =
  `from passlib.context import CryptContext\nctx = CryptContext(schemes=["bcrypt"])\nprint(ctx.verify(data["password"], data["hash"]))`;

/** Hashes, in NFKC form, that both sides must agree on. */
const INTEROP_PASSWORDS = [
  "Correct-Horse-7-Battery!",
  "Gr\u00fc\u00dfe, J\u00fcrgen! 7\u20ac",
  "\u043f\u0430\u0440\u043e\u043b\u044c-\u65e5\u672c-\u{1F511}",
];

async function withHasher(
  options: { rounds: number; workers: number; backend?: BcryptBackend },
  fn: (hasher: PasswordHasher) => Promise<void>,
): Promise<void> {
  const hasher = createBcryptHasher(options);
  try {
    await fn(hasher);
  } finally {
    hasher.close();
  }
}

const MODES = [
  { name: "bcryptjs inline (workers: 0)", workers: 0, backend: "js" },
  { name: "bcryptjs worker pool (workers: 1)", workers: 1, backend: "js" },
  { name: "native bcrypt, C (workers: 1)", workers: 1, backend: "native" },
] as const;

Deno.test("verify() accepts published bcrypt test vectors and refuses wrong passwords", async (t) => {
  for (const mode of MODES) {
    await t.step(mode.name, async () => {
      await withHasher(
        { rounds: 4, workers: mode.workers, backend: mode.backend },
        async (hasher) => {
          for (const [password, hash] of VECTORS) {
            assertEquals(await hasher.verify(password, hash), true, `${hash} with ${password}`);
            assertEquals(await hasher.verify(`${password}x`, hash), false, `${hash} with suffix`);
            assertEquals(await hasher.verify(`x${password}`, hash), false, `${hash} with prefix`);
          }
        },
      );
    });
  }
});

Deno.test("verify() refuses a vector whose password is over 72 bytes (no silent truncation)", async (t) => {
  for (const mode of MODES) {
    await t.step(mode.name, async () => {
      await withHasher(
        { rounds: 4, workers: mode.workers, backend: mode.backend },
        async (hasher) => {
          // Reference bcrypt (Python, OpenBSD) says true here because it truncates at 72 bytes.
          assertEquals(await hasher.verify(LONG_VECTOR.password, LONG_VECTOR.hash), false);
          // The first 72 bytes alone are the actual bcrypt input, and they do match.
          const first72 = LONG_VECTOR.password.slice(0, BCRYPT_MAX_BYTES);
          assertEquals(await hasher.verify(first72, LONG_VECTOR.hash), true);
        },
      );
    });
  }
});

Deno.test("verify() normalises to NFKC, so a foreign hash of a non-NFKC password does not verify", async () => {
  // Documents a migration consequence: passlib's "táБℓə" vector was hashed from the raw
  // code points; verify() hashes "táБlə" instead. Users with such hashes must reset.
  await withHasher({ rounds: 4, workers: 0 }, async (hasher) => {
    assertEquals(await hasher.verify(NON_NFKC_VECTOR.password, NON_NFKC_VECTOR.hash), false);
  });
});

Deno.test(
  `hash() and verify() interoperate with Python bcrypt 3.2 and passlib 1.7${PYTHON_IGNORED}`,
  {
    ignore: !HAS_PYTHON_BCRYPT,
  },
  async (t) => {
    for (const mode of [MODES[0], MODES[2]]) {
      await withHasher({ rounds: 4, ...mode }, async (hasher) => {
        await interop(t, mode.name, hasher);
      });
    }
  },
);

/** The interoperability steps, run once per bcrypt engine. */
async function interop(t: Deno.TestContext, mode: string, hasher: PasswordHasher): Promise<void> {
  await t.step(`${mode}: a hash made by Python bcrypt.hashpw verifies here`, async () => {
    for (const password of INTEROP_PASSWORDS) {
      const hash = await python(PY_BCRYPT_HASH, { password, rounds: 4 });
      assertMatch(hash, /^\$2b\$04\$/);
      assertEquals(await hasher.verify(password, hash), true, password);
      assertEquals(await hasher.verify(`${password}.`, hash), false, password);
    }
  });
  await t.step(
    `${mode}: a hash made by passlib CryptContext(schemes=[bcrypt]) verifies here`,
    async () => {
      for (const password of INTEROP_PASSWORDS) {
        const hash = await python(PY_PASSLIB_HASH, { password, rounds: 4 });
        assertMatch(hash, /^\$2b\$04\$/);
        assertEquals(await hasher.verify(password, hash), true, password);
        assertEquals(hasher.needsRehash(hash), false);
      }
    },
  );
  await t.step(
    `${mode}: a hash made here verifies with Python bcrypt.checkpw and passlib`,
    async () => {
      for (const password of INTEROP_PASSWORDS) {
        const hash = await hasher.hash(password);
        assertEquals(await python(PY_BCRYPT_CHECK, { password, hash }), "True", password);
        assertEquals(await python(PY_PASSLIB_CHECK, { password, hash }), "True", password);
        assertEquals(await python(PY_BCRYPT_CHECK, { password: `${password}.`, hash }), "False");
      }
    },
  );
  await t.step(
    `${mode}: a Python hash of the composed form verifies with the decomposed input`,
    async () => {
      const hash = await python(PY_BCRYPT_HASH, { password: "Caf\u00e9-Pass-1!", rounds: 4 });
      assertEquals(await hasher.verify("Cafe\u0301-Pass-1!", hash), true);
    },
  );
}

Deno.test("hash() returns $2b$ at the configured cost with a fresh salt", async (t) => {
  for (const rounds of [4, 5]) {
    await t.step(`rounds ${rounds}`, async () => {
      await withHasher({ rounds, workers: 0 }, async (hasher) => {
        const a = await hasher.hash("Correct-Horse-7!");
        const b = await hasher.hash("Correct-Horse-7!");
        const cost = String(rounds).padStart(2, "0");
        assertMatch(a, new RegExp(`^\\$2b\\$${cost}\\$[./A-Za-z0-9]{53}$`));
        assert(a !== b, "two hashes of one password must differ by salt");
        assertEquals(await hasher.verify("Correct-Horse-7!", a), true);
        assertEquals(await hasher.verify("Correct-Horse-7!", b), true);
        assertEquals(hasher.needsRehash(a), false);
      });
    });
  }
  await t.step("the worker pool returns the same format", async () => {
    await withHasher({ rounds: 4, workers: 1, backend: "js" }, async (hasher) => {
      const hash = await hasher.hash("Correct-Horse-7!");
      assertMatch(hash, /^\$2b\$04\$[./A-Za-z0-9]{53}$/);
      assertEquals(await hasher.verify("Correct-Horse-7!", hash), true);
    });
  });
  await t.step("native code returns the same format ($2b$)", async () => {
    await withHasher({ rounds: 4, workers: 1, backend: "native" }, async (hasher) => {
      const hash = await hasher.hash("Correct-Horse-7!");
      assertMatch(hash, /^\$2b\$04\$[./A-Za-z0-9]{53}$/);
      assertEquals(await hasher.verify("Correct-Horse-7!", hash), true);
    });
  });
});

Deno.test("createBcryptHasher() refuses a cost outside 4-31", async (t) => {
  for (const rounds of [3, 32, 4.5, Number.NaN]) {
    await t.step(`rounds ${rounds}`, () => {
      let thrown: unknown;
      try {
        createBcryptHasher({ rounds, workers: 0 }).close();
      } catch (error) {
        thrown = error;
      }
      assert(thrown instanceof RangeError, `expected RangeError for ${rounds}`);
    });
  }
});

Deno.test("needsRehash() flags weaker costs, other idents and garbage", async (t) => {
  const hasher = createBcryptHasher({ rounds: 10, workers: 0 });
  try {
    const salt53 = "WvvTPHKwdBJ3uk0Z37EMR.hLA2W6N9AEBhEgrAOljy2Ae5MtaSIUi";
    await t.step("false for $2b$ at the configured cost or above", () => {
      assertEquals(hasher.needsRehash(`$2b$10$${salt53}`), false);
      assertEquals(hasher.needsRehash(`$2b$12$${salt53}`), false);
    });
    await t.step("true for fewer rounds", () => {
      assertEquals(hasher.needsRehash(`$2b$04$${salt53}`), true);
      assertEquals(hasher.needsRehash(`$2b$09$${salt53}`), true);
    });
    await t.step("true for $2a$, $2y$ and $2x$ at the same cost", () => {
      assertEquals(hasher.needsRehash(`$2a$10$${salt53}`), true);
      assertEquals(hasher.needsRehash(`$2y$10$${salt53}`), true);
      assertEquals(hasher.needsRehash(`$2x$10$${salt53}`), true);
    });
    await t.step("true for garbage", () => {
      for (
        const garbage of [
          "",
          "not a hash",
          "$2b$10$",
          `$2b$10$${salt53}x`,
          `$2b$10$${salt53.slice(1)}`,
          `$2b$1$${salt53}`,
          `$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$${salt53}`,
          `pbkdf2_sha256$600000$${salt53}`,
        ]
      ) {
        assertEquals(hasher.needsRehash(garbage), true, JSON.stringify(garbage));
      }
    });
  } finally {
    hasher.close();
  }
});

Deno.test("hash() refuses more than 72 UTF-8 bytes with RangeError", async (t) => {
  await withHasher({ rounds: 4, workers: 0 }, async (hasher) => {
    await t.step("73 ASCII bytes", async () => {
      await assertRejects(() => hasher.hash("a".repeat(73)), RangeError);
    });
    await t.step("25 x '€' is 25 characters but 75 bytes", async () => {
      await assertRejects(() => hasher.hash("\u20ac".repeat(25)), RangeError);
    });
    await t.step("the limit applies after NFKC (U+FDFA expands to 33 bytes)", async () => {
      // 3 code points, 9 bytes as typed, 99 bytes after NFKC.
      await assertRejects(() => hasher.hash("\ufdfa".repeat(3)), RangeError);
    });
    await t.step("exactly 72 bytes is accepted", async () => {
      const password = "\u20ac".repeat(24); // 72 bytes
      const hash = await hasher.hash(password);
      assertEquals(await hasher.verify(password, hash), true);
    });
  });
});

Deno.test("verify() returns false past 72 bytes even when the first 72 bytes match", async (t) => {
  for (const mode of MODES) {
    await t.step(mode.name, async () => {
      await withHasher(
        { rounds: 4, workers: mode.workers, backend: mode.backend },
        async (hasher) => {
          const password = "A1!".repeat(24); // exactly 72 bytes
          const hash = await hasher.hash(password);
          assertEquals(await hasher.verify(password, hash), true);
          assertEquals(await hasher.verify(`${password}X`, hash), false);
          assertEquals(await hasher.verify(`${password}${"X".repeat(100)}`, hash), false);
          // Multibyte: 24 x '€' = 72 bytes; one more '€' is over the limit.
          const euros = "\u20ac".repeat(24);
          const euroHash = await hasher.hash(euros);
          assertEquals(await hasher.verify(`${euros}\u20ac`, euroHash), false);
        },
      );
    });
  }
});

Deno.test("verify() accepts the composed and decomposed forms of a password (NFKC)", async (t) => {
  await withHasher({ rounds: 4, workers: 0 }, async (hasher) => {
    const composed: string = "Caf\u00e9-Pass-1!";
    const decomposed: string = "Cafe\u0301-Pass-1!";
    assert(composed !== decomposed);
    await t.step("hashed composed, verified decomposed", async () => {
      assertEquals(await hasher.verify(decomposed, await hasher.hash(composed)), true);
    });
    await t.step("hashed decomposed, verified composed", async () => {
      assertEquals(await hasher.verify(composed, await hasher.hash(decomposed)), true);
    });
    await t.step("compatibility forms: full-width letters equal ASCII", async () => {
      const hash = await hasher.hash("Pass-1!");
      assertEquals(await hasher.verify("\uff30\uff41\uff53\uff53-\uff11!", hash), true);
    });
    await t.step("a different accent does not verify", async () => {
      const hash = await hasher.hash(composed);
      assertEquals(await hasher.verify("Caf\u00e8-Pass-1!", hash), false);
      assertEquals(await hasher.verify("Cafe-Pass-1!", hash), false);
    });
  });
});

Deno.test("verify() returns false for malformed hash strings instead of throwing", async (t) => {
  for (const mode of MODES) {
    await t.step(mode.name, async () => {
      await withHasher(
        { rounds: 4, workers: mode.workers, backend: mode.backend },
        async (hasher) => {
          const good = await hasher.hash("Correct-Horse-7!");
          const malformed = [
            "",
            "not a hash",
            "$2b$04$",
            "$2b$04$short",
            good.slice(0, -1),
            `${good}x`,
            `${good.slice(0, -1)}!`,
            `${good.slice(0, 20)}\u0000${good.slice(21)}`,
            good.replace("$2b$04$", "$2b$4$"),
            good.replace("$2b$", "$2z$"),
            good.replace("$2b$", "$2$"),
            good.replace("$2b$", "$3b$"),
            good.toUpperCase(),
            `${" ".repeat(4)}${good}`,
            "x".repeat(10_000),
          ];
          for (const hash of malformed) {
            assertEquals(
              await hasher.verify("Correct-Horse-7!", hash),
              false,
              JSON.stringify(hash),
            );
          }
          // The good hash still verifies after all that (the pool is not wedged).
          assertEquals(await hasher.verify("Correct-Horse-7!", good), true);
        },
      );
    });
  }
});

// Regression: BCRYPT_HASH once accepted `$2x$` and any two-digit cost, which bcryptjs throws on,
// so a corrupt stored hash turned a login into a 500.
Deno.test(
  "verify() returns false for $2x$ and out-of-range costs (a corrupt stored hash made login a 500)",
  async (t) => {
    for (const mode of MODES) {
      await t.step(mode.name, async () => {
        await withHasher(
          { rounds: 4, workers: mode.workers, backend: mode.backend },
          async (hasher) => {
            const good = await hasher.hash("Correct-Horse-7!");
            for (const prefix of ["$2x$04$", "$2b$00$", "$2b$03$", "$2b$32$", "$2b$99$"]) {
              const hash = prefix + good.slice(7);
              assertEquals(await hasher.verify("Correct-Horse-7!", hash), false, prefix);
            }
          },
        );
      });
    }
  },
);

Deno.test("the worker pool routes each result back to its own caller", async () => {
  await withHasher({ rounds: 4, workers: 2 }, async (hasher) => {
    const passwords = Array.from({ length: 8 }, (_, i) => `Password-${i}-!`);
    const hashes = await Promise.all(passwords.map((p) => hasher.hash(p)));
    const checks = await Promise.all(
      passwords.flatMap((p, i) =>
        hashes.map((h, j) => hasher.verify(p, h).then((ok) => [i, j, ok]))
      ),
    );
    for (const [i, j, ok] of checks) assertEquals(ok, i === j, `password ${i} vs hash ${j}`);
  });
});

/** Ticks a zero-delay timer while `work` runs; returns the longest gap between ticks. */
async function maxTimerGap(
  work: () => Promise<unknown>,
): Promise<{ gap: number; ticks: number; elapsed: number }> {
  let last = performance.now();
  let gap = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    gap = Math.max(gap, now - last);
    last = now;
    ticks++;
  }, 0);
  const start = performance.now();
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  const end = performance.now();
  gap = Math.max(gap, end - last);
  return { gap, ticks, elapsed: end - start };
}

Deno.test("the worker pool and native code never block the event loop", async (t) => {
  for (const backend of ["js", "native"] as const) {
    await t.step(
      `${backend}: 4 hashes at rounds 10, 2 at a time: timer gaps stay under 50 ms`,
      async () => {
        await withHasher({ rounds: 10, workers: 2, backend }, async (hasher) => {
          assertEquals(await hasher.engine, backend);
          // Steady state: workers start on first use, and that start is not what is measured.
          await Promise.all([hasher.hash("warm-up-1"), hasher.hash("warm-up-2")]);
          const { gap, ticks, elapsed } = await maxTimerGap(() =>
            Promise.all([0, 1, 2, 3].map((i) => hasher.hash(`Password-${i}-!`)))
          );
          // The measurement only means something when the work outlasts the bound.
          assert(elapsed > 50, `hashing took only ${elapsed.toFixed(1)} ms`);
          assert(gap < 50, `main thread stalled for ${gap.toFixed(1)} ms`);
          assert(ticks >= 10, `timer ticked only ${ticks} times in ${elapsed.toFixed(1)} ms`);
        });
      },
    );
  }
  await t.step(
    "control: inline mode (tests only) does stall the timer for a whole hash",
    async () => {
      await withHasher({ rounds: 10, workers: 0 }, async (hasher) => {
        const { gap, elapsed } = await maxTimerGap(async () => {
          // Let the timer start ticking before the synchronous hash begins.
          await new Promise((resolve) => setTimeout(resolve, 5));
          await hasher.hash("Password-0-!");
        });
        assert(gap > (elapsed - 5) * 0.5, `gap ${gap.toFixed(1)} ms of ${elapsed.toFixed(1)} ms`);
      });
    },
  );
});

Deno.test("close() rejects pending jobs and later submits", async (t) => {
  await t.step("queued and running jobs reject", async () => {
    const hasher = createBcryptHasher({ rounds: 12, workers: 1 });
    const running = hasher.hash("Password-0-!");
    const queued = hasher.hash("Password-1-!");
    const outcomes = Promise.allSettled([running, queued]);
    hasher.close();
    for (const outcome of await outcomes) {
      assertEquals(outcome.status, "rejected");
      if (outcome.status === "rejected") assertMatch(String(outcome.reason), /closed/);
    }
  });
  await t.step("hash() and verify() after close() reject", async () => {
    const hasher = createBcryptHasher({ rounds: 4, workers: 1 });
    const hash = await hasher.hash("Password-0-!");
    hasher.close();
    const afterHash = await assertRejects(() => hasher.hash("Password-0-!"), Error);
    assertMatch(afterHash.message, /closed/);
    const afterVerify = await assertRejects(() => hasher.verify("Password-0-!", hash), Error);
    assertMatch(afterVerify.message, /closed/);
  });
  await t.step("close() twice is harmless", () => {
    const hasher = createBcryptHasher({ rounds: 4, workers: 1 });
    hasher.close();
    hasher.close();
  });
});

Deno.test("dummyHash() is a well-formed hash at the configured cost, computed once", async () => {
  await withHasher({ rounds: 5, workers: 0 }, async (hasher) => {
    const a = await hasher.dummyHash();
    const b = await hasher.dummyHash();
    assertMatch(a, /^\$2b\$05\$[./A-Za-z0-9]{53}$/);
    assertEquals(a, b);
    assertEquals(hasher.needsRehash(a), false);
  });
});

/**
 * Runs a hasher in a child Deno without `--allow-ffi` (so native code cannot
 * load) and returns what it printed: the engine, or the failure.
 */
async function withoutFfi(backend: "auto" | "native"): Promise<string> {
  const hasherUrl = new URL("../../../services/identity/password_hasher.ts", import.meta.url);
  const script = `
    import { createBcryptHasher } from ${JSON.stringify(hasherUrl.href)};
    const logged = [];
    const logger = { warn: (msg, f) => logged.push(msg + " " + JSON.stringify(f)), info: () => {} };
    const hasher = createBcryptHasher({ rounds: 4, workers: 1, backend: ${
    JSON.stringify(backend)
  }, logger });
    try {
      const hash = await hasher.hash("Correct-Horse-7!");
      console.log(await hasher.engine, hash.slice(0, 7), await hasher.verify("Correct-Horse-7!", hash), logged.join("; "));
    } catch (error) {
      console.log("failed", String(error));
    } finally {
      hasher.close();
    }`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-read", "--allow-env", "--allow-sys", "-"],
    cwd: new URL("../../../", import.meta.url),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const { stdout, stderr } = await child.output();
  return new TextDecoder().decode(stdout).trim() || new TextDecoder().decode(stderr);
}

Deno.test("createBcryptHasher() falls back to bcryptjs where native code cannot load", async (t) => {
  await t.step("auto: bcryptjs workers, $2b$ hashes, and a warning saying why", async () => {
    const out = await withoutFfi("auto");
    assertMatch(out, /^js \$2b\$04\$ true bcrypt: native code did not load/);
  });
  await t.step("native (forced): every hash fails instead of silently using bcryptjs", async () => {
    assertMatch(await withoutFfi("native"), /^failed /);
  });
});

Deno.test("a password with a NUL byte is hashed whole, and both engines agree", async () => {
  // A C string would end at the NUL, making "Correct\0anything" equal "Correct".
  const password = "Correct-7!\u0000AAAA";
  await withHasher({ rounds: 4, workers: 1, backend: "native" }, async (native) => {
    await withHasher({ rounds: 4, workers: 0, backend: "js" }, async (js) => {
      for (const [hasher, other] of [[native, js], [js, native]] as const) {
        const hash = await hasher.hash(password);
        assertEquals(await other.verify(password, hash), true);
        assertEquals(await other.verify("Correct-7!", hash), false);
        assertEquals(await hasher.verify("Correct-7!\u0000BBBB", hash), false);
      }
    });
  });
});

Deno.test("createBcryptHasher() loads its engine on the first job, not when created", async (t) => {
  for (const backend of ["js", "native"] as const) {
    await t.step(`${backend}: nothing is loaded until a hash is asked for`, async () => {
      const said: string[] = [];
      const note = (message: string) => void said.push(message);
      const logger = { debug: note, info: note, warn: note, error: note };
      const hasher = createBcryptHasher({ rounds: 4, workers: 1, backend, logger });
      try {
        // Start-up creates the hasher; loading native code or workers then would delay listening.
        await new Promise((resolve) => setTimeout(resolve, 20));
        assertEquals(said, []);
        assertMatch(await hasher.hash("Correct-Horse-7!"), /^\$2b\$04\$/);
        assertEquals(said.length, 1);
        assertMatch(said[0] ?? "", /^bcrypt: /);
      } finally {
        hasher.close();
      }
    });
  }
});
