import { ZxcvbnFactory } from "@zxcvbn-ts/core";
import { adjacencyGraphs, dictionary as commonDictionary } from "@zxcvbn-ts/language-common";
import { dictionary as enDictionary, translations } from "@zxcvbn-ts/language-en";
import { type FieldError, PasswordPolicyError } from "../core/errors.ts";
import { BCRYPT_MAX_BYTES, normalizePassword } from "./password_hasher.ts";

/** Checks a candidate password against the policy of API.md. */
export interface PasswordPolicy {
  /**
   * Returns every broken rule, or an empty list when the password is acceptable.
   * `userInputs` (email, display name) count as guessable words.
   */
  check(password: string, userInputs?: readonly string[]): FieldError[];
  /**
   * @throws {PasswordPolicyError} listing every broken rule
   */
  assert(password: string, userInputs?: readonly string[], path?: string): void;
}

/** Options of {@linkcode createPasswordPolicy}. */
export interface PasswordPolicyOptions {
  /** NIST SP 800-63B §5.1.1.2 minimum. @default 8 */
  minLength?: number;
  /** zxcvbn score needed (0-4); 3 = "safely unguessable" for online attacks. @default 3 */
  minScore?: number;
}

/** Builds the policy; loads the zxcvbn dictionaries once. */
export function createPasswordPolicy(options: PasswordPolicyOptions = {}): PasswordPolicy {
  const minLength = options.minLength ?? 8;
  const minScore = options.minScore ?? 3;
  const zxcvbn = new ZxcvbnFactory({
    dictionary: { ...commonDictionary, ...enDictionary },
    graphs: adjacencyGraphs,
    translations,
  });

  function check(password: string, userInputs: readonly string[] = []): FieldError[] {
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
    assert(password, userInputs, path = "password") {
      const errors = check(password, userInputs).map((e) => ({ ...e, path }));
      if (errors.length > 0) {
        throw new PasswordPolicyError("The password does not meet the policy", { errors });
      }
    },
  };
}
