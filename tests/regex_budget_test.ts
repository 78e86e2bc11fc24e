/**
 * Every function that runs a regular expression on client input, fed 64 KiB strings built from
 * the pieces its patterns could backtrack on, must answer within a time budget (#10 finding 5:
 * super-linear backtracking). A quadratic pattern takes seconds at this size (the old
 * `[\s.]+$` filename trim: ~27 s), so the budgets leave room for a loaded machine.
 */
import fc from "fast-check";
import { z } from "zod";
import { Email } from "../routes/_route.ts";
import { isJsonContentType } from "../middleware/validate.ts";
import { isOriginPattern } from "../services/config/declaration.ts";
import { createPasswordPolicy } from "../services/identity/password_policy.ts";
import { forwardedAddress, resolveClientIp } from "../services/limits/client_ip.ts";
import { parseRateLimit } from "../services/limits/rate_limiter.ts";
import { streamUploadField } from "../services/uploads/multipart.ts";
import { contentDisposition, sanitizeFilename } from "../services/uploads/uploads.ts";
import { assert } from "./_helpers/assert.ts";
import { openWorld } from "./_helpers/world.ts";

const SIZE = 64 * 1024;
/** Budget of one direct call. */
const CALL_MS = 50;
/** Budget of one whole in-process request (routing, middleware, handler) around the pattern. */
const REQUEST_MS = 250;
const RUNS = 12;

/** Strings of ~64 KiB: a prefix, a unit of 1-4 pieces repeated, and a short tail that may fail the match. */
function adversarial(
  pieces: readonly string[],
  options: { prefix?: string; tails?: readonly string[]; size?: number } = {},
): fc.Arbitrary<string> {
  const size = options.size ?? SIZE;
  return fc.record({
    unit: fc.array(fc.constantFrom(...pieces), { minLength: 1, maxLength: 4 }),
    tail: fc.constantFrom(...(options.tails ?? ["", "!", "x", "\u0000", " ", "."])),
  }).map(({ unit, tail }) => {
    const piece = unit.join("");
    return (options.prefix ?? "") + piece.repeat(Math.ceil(size / piece.length)) + tail;
  });
}

/**
 * Runs `fn` once to warm up, then asserts the budget for each generated input: the best of three
 * timings, since a super-linear pattern is slow every time and a busy machine only sometimes.
 */
async function withinBudget(
  arbitrary: fc.Arbitrary<string>,
  budgetMs: number,
  fn: (input: string) => unknown,
): Promise<void> {
  async function timed(input: string): Promise<number> {
    const started = performance.now();
    try {
      await fn(input);
    } catch (error) {
      // Refusing the input is fine; only the time matters here.
      if (!(error instanceof Error)) throw error;
    }
    return performance.now() - started;
  }
  await timed("warm-up");
  await fc.assert(
    fc.asyncProperty(arbitrary, async (input) => {
      let ms = Infinity;
      for (let i = 0; i < 3 && ms >= budgetMs; i++) ms = Math.min(ms, await timed(input));
      assert(ms < budgetMs, `${ms.toFixed(1)} ms on ${JSON.stringify(input.slice(0, 40))}…`);
    }),
    // A failure is already minimal enough: shrinking 64 KiB inputs would take minutes.
    { numRuns: RUNS, endOnFailure: true },
  );
}

Deno.test("regexes on client input stay linear on 64 KiB adversarial strings (#10 finding 5)", async (t) => {
  await t.step("sanitizeFilename (upload filenames; was ~250 ms at 16 KiB)", async () => {
    const pieces = [" ", ".", " .", "\t", "a", "\u202e", "/", "\\", '"', "é"];
    await withinBudget(
      adversarial(pieces, { tails: ["", "x", ".png", "!"] }),
      CALL_MS,
      (s) => sanitizeFilename(s),
    );
    await withinBudget(adversarial(pieces, { prefix: "a" }), CALL_MS, (s) => sanitizeFilename(s));
  });
  await t.step("contentDisposition (stored filenames)", async () => {
    await withinBudget(
      adversarial(["é", "%", "(", "a", '"', ";", "\\"]),
      CALL_MS,
      (s) => contentDisposition(s),
    );
  });
  await t.step("multipart filename decoding (streamUploadField)", async () => {
    await withinBudget(
      adversarial(["%22", "%0D", "%0A", "%", "%2", "a"], { size: 16 * 1024 }),
      REQUEST_MS,
      async (name) => {
        const boundary = "b0undary";
        const body = new TextEncoder().encode(
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\n` +
            `\r\nx\r\n--${boundary}--\r\n`,
        );
        const file = await streamUploadField(
          new Blob([body]).stream(),
          `multipart/form-data; boundary=${boundary}`,
          { field: "file", maxFileBytes: 1024, maxBodyBytes: 128 * 1024 },
        );
        await file.stream.cancel();
      },
    );
  });
  await t.step("isJsonContentType (Content-Type of JSON routes)", async () => {
    await withinBudget(
      adversarial(["a", ".", "-", "+", "json", "a+"], { prefix: "application/" }),
      CALL_MS,
      (s) => isJsonContentType(s),
    );
  });
  await t.step("resolveClientIp / forwardedAddress (X-Forwarded-For)", async () => {
    const xff = adversarial(["1.", "[", "::", ",", " ", ":1", "1", "]:443", "203.0.113.5:4711,"]);
    await withinBudget(xff, CALL_MS, (s) => resolveClientIp("198.51.100.1", s, 2));
    await withinBudget(xff, CALL_MS, (s) => forwardedAddress(s));
  });
  await t.step("emails (Email schema, z.email())", async () => {
    const emails = adversarial(["a", ".", "-", "@", "a.", "a-", "_"]);
    await withinBudget(emails, CALL_MS, (s) => Email.safeParse(s));
    await withinBudget(emails, CALL_MS, (s) => z.email().safeParse(s));
  });
  await t.step("password policy (passwords and user inputs)", async () => {
    const policy = createPasswordPolicy();
    await withinBudget(
      adversarial(["a", "A", "1", "!", " ", "é"]),
      CALL_MS,
      (s) => policy.check(s, [s]),
    );
  });
  await t.step("rate and origin settings (parseRateLimit, isOriginPattern)", async () => {
    await withinBudget(
      adversarial(["1", "/", "s", " ", "minute"]),
      CALL_MS,
      (s) => parseRateLimit(s),
    );
    await withinBudget(
      adversarial(["a", "-", ".", "a-", "a."], { prefix: "https://" }),
      CALL_MS,
      (s) => isOriginPattern(s),
    );
  });
});

Deno.test("regexes on request headers stay linear on 64 KiB adversarial values (#10 finding 5)", async (t) => {
  await using w = await openWorld({ env: { CORS_ORIGINS: "https://*.example.org" } });
  async function request(headers: Record<string, string>, path = "/users/me", init = {}) {
    await (await w.app.request(path, { headers, ...init })).body?.cancel();
  }
  await t.step("Authorization: Bearer parsing (middleware/auth.ts)", async () => {
    await withinBudget(
      adversarial(["a", "=", ".", "+", "/", "~", "a="], { prefix: "Bearer " }),
      REQUEST_MS,
      (s) => request({ authorization: s }),
    );
  });
  await t.step("X-Request-ID", async () => {
    await withinBudget(
      adversarial(["a", ".", "-", "_"]),
      REQUEST_MS,
      (s) => request({ "x-request-id": s }, "/health"),
    );
  });
  await t.step("Origin against a wildcard CORS origin", async () => {
    await withinBudget(
      adversarial(["a", "-", "a-"], {
        prefix: "https://",
        tails: [".example.org", "-.example.org"],
      }),
      REQUEST_MS,
      (s) => request({ origin: s }, "/health"),
    );
  });
  await t.step("Content-Type of a JSON route", async () => {
    await withinBudget(
      adversarial(["a", ".", "-", "+", "a+"], { prefix: "application/" }),
      REQUEST_MS,
      (s) => request({ "content-type": s }, "/auth/login", { method: "POST", body: "{}" }),
    );
  });
});
