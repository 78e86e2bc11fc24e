import type { ZxcvbnFactory } from "@zxcvbn-ts/core";
import { type FieldError, PasswordPolicyError } from "../core/errors.ts";
import { BCRYPT_MAX_BYTES, normalizePassword } from "./password_hasher.ts";

/** Checks a candidate password against the policy of API.md. */
export interface PasswordPolicy {
  /**
   * Returns every broken rule, or an empty list when the password is acceptable.
   * `userInputs` (email, display name) count as guessable words. The first call
   * waits for the dictionaries.
   */
  check(password: string, userInputs?: readonly string[]): Promise<FieldError[]>;
  /**
   * @throws {PasswordPolicyError} listing every broken rule
   */
  assert(password: string, userInputs?: readonly string[], path?: string): Promise<void>;
  /** Loads the dictionaries now rather than on the first check; resolves when they are ready. */
  ready(): Promise<void>;
}

/** Options of {@linkcode createPasswordPolicy}. */
export interface PasswordPolicyOptions {
  /** NIST SP 800-63B §5.1.1.2 minimum. @default 8 */
  minLength?: number;
  /** zxcvbn score needed (0-4); 3 = "safely unguessable" for online attacks. @default 3 */
  minScore?: number;
}

/**
 * Builds the policy. The zxcvbn dictionaries (about 30 MiB of heap and a
 * few hundred milliseconds of CPU to import and rank) load on the first check or
 * `ready()`, once, not at start-up: a process that never registers anyone
 * never pays for them, and start-up does not wait for them.
 */
export function createPasswordPolicy(options: PasswordPolicyOptions = {}): PasswordPolicy {
  const minLength = options.minLength ?? 8;
  const minScore = options.minScore ?? 3;
  let loading: Promise<ZxcvbnFactory> | undefined;
  const load = (): Promise<ZxcvbnFactory> => {
    loading ??= loadZxcvbn();
    // A failed load (it should not fail) is retried by the next check instead of cached.
    loading.catch(() => loading = undefined);
    return loading;
  };

  async function check(password: string, userInputs: readonly string[] = []) {
    const zxcvbn = await load();
    return checkWith(zxcvbn, password, userInputs);
  }

  function checkWith(
    zxcvbn: ZxcvbnFactory,
    password: string,
    userInputs: readonly string[],
  ): FieldError[] {
    const normalized = normalizePassword(password);
    const bytes = new TextEncoder().encode(normalized).byteLength;
    const failures: string[] = [];
    if ([...normalized].length < minLength) {
      failures.push(`must be at least ${minLength} characters`);
    }
    if (bytes > BCRYPT_MAX_BYTES) {
      failures.push(`must be at most ${BCRYPT_MAX_BYTES} bytes in UTF-8`);
    }
    if (!/\p{Lu}/u.test(normalized)) failures.push("must contain an uppercase letter");
    if (!/\p{Ll}/u.test(normalized)) failures.push("must contain a lowercase letter");
    if (!/\p{Nd}/u.test(normalized)) failures.push("must contain a digit");
    if (!/[^\p{L}\p{Nd}]/u.test(normalized)) failures.push("must contain a special character");
    // zxcvbn is costly on long input; past bcrypt's limit the password is refused anyway.
    if (bytes <= BCRYPT_MAX_BYTES) {
      const inputs = userInputs.flatMap((s) => [s, ...s.toLowerCase().split(/[^\p{L}\p{Nd}]+/u)])
        .filter((s) => s.length >= 3);
      const result = zxcvbn.check(normalized, inputs);
      if (result.score < minScore) {
        const hint = result.feedback.warning ?? result.feedback.suggestions[0];
        failures.push(`is too easy to guess${hint ? `: ${hint}` : ""}`);
      }
    }
    return failures.map((message) => ({ path: "password", message: `Password ${message}` }));
  }

  return {
    check,
    async assert(password, userInputs, path = "password") {
      const errors = (await check(password, userInputs)).map((e) => ({ ...e, path }));
      if (errors.length > 0) {
        throw new PasswordPolicyError("The password does not meet the policy", { errors });
      }
    },
    async ready() {
      await load();
    },
  };
}

type FactoryOptions = NonNullable<ConstructorParameters<typeof ZxcvbnFactory>[0]>;

/** Imports the dictionaries and ranks them (once per policy). */
async function loadZxcvbn(): Promise<ZxcvbnFactory> {
  const [{ ZxcvbnFactory }, options] = await Promise.all([
    import("@zxcvbn-ts/core"),
    loadZxcvbnOptions(),
  ]);
  return new ZxcvbnFactory(options);
}

/**
 * The word lists, keyboard graphs and English messages of `@zxcvbn-ts/language-common` and
 * `-en`, from the packages' published JSON sources rather than their index modules: those
 * decompress every list into arrays of concatenated strings that their modules keep for good
 * (about 15 MiB more resident memory than flat JSON arrays). The same words in the same order,
 * so the same ranks (`password_policy_test.ts` compares them with the index modules' lists).
 * Specifiers are literal, so `deno compile` embeds the files.
 */
export async function loadZxcvbnOptions(): Promise<
  Required<Pick<FactoryOptions, "dictionary" | "graphs" | "translations">>
> {
  const [
    graphs,
    translations,
    diceware,
    passwords,
    commonWords,
    firstnames,
    lastnames,
    wikipedia,
    wordSequences,
  ] = await Promise.all([
    import("@zxcvbn-ts/language-common/src/adjacencyGraphs.json", { with: { type: "json" } }),
    import("@zxcvbn-ts/language-en/dist/translations.mjs"),
    import("@zxcvbn-ts/language-common/src/diceware.json", { with: { type: "json" } }),
    import("@zxcvbn-ts/language-common/src/passwords.json", { with: { type: "json" } }),
    import("@zxcvbn-ts/language-en/src/commonWords.json", { with: { type: "json" } }),
    import("@zxcvbn-ts/language-en/src/firstnames.json", { with: { type: "json" } }),
    import("@zxcvbn-ts/language-en/src/lastnames.json", { with: { type: "json" } }),
    import("@zxcvbn-ts/language-en/src/wikipedia.json", { with: { type: "json" } }),
    import("@zxcvbn-ts/language-en/src/wordSequences.json", { with: { type: "json" } }),
  ]);
  return {
    // The names the language packages' index modules give them.
    dictionary: {
      "diceware-common": diceware.default,
      "passwords-common": passwords.default,
      "commonWords-en": commonWords.default,
      "firstnames-en": firstnames.default,
      "lastnames-en": lastnames.default,
      "wikipedia-en": wikipedia.default,
      ...wordSequences.default,
    },
    graphs: graphs.default,
    // translations.d.ts types this .mjs as CommonJS (the package declares no "type": "module"),
    // one `default` too deep; at run time the default export is the translations object.
    translations: translations.default as unknown as NonNullable<FactoryOptions["translations"]>,
  };
}
