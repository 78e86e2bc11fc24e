/**
 * Every setting, declared once. From {@linkcode SETTINGS} come the zod schema of the environment
 * (`loadConfig()`), the `check-config` printout (`describeConfig()`), the extra start-up checks
 * (production refusals among them) and the README "Configuration" table.
 *
 * To add a setting:
 * 1. Add an entry to the group of its domain in `settings/` (or a new group file, spread into
 *    {@linkcode SETTINGS} below), where it belongs in the README table. The key is the variable
 *    name; the value is `setting({ ... })` (see {@linkcode Setting} in `declaration.ts`):
 *    - `schema`: zod, from the raw string (coercion, bounds, then `.default()` or `.optional()`);
 *      `declaration.ts` has the usual pieces (`bool`, `port`, `positiveInt`, `rate`, `list`...).
 *    - `doc`: the README "meaning" cell, one line of Markdown.
 *    - `defaultDoc` when the default is computed (the schema's `.default()` is shown otherwise).
 *    - `secret: true` for a credential: also read from `<NAME>_FILE`, never printed as is.
 *      Add a sample value to `tests/services/config/settings_test.ts`.
 *    - `show: (c) => c.fooBar` to print it in `check-config` (nothing is printed without it).
 *    - `check` for refusals the schema cannot express, e.g. production-only ones
 *      (`production ? '"FOO" must ...' : undefined`).
 * 2. Add the field to `Config` in `model.ts` and resolve it in `loadConfig()` in `config.ts`
 *    (`fooBar: e.FOO_BAR`; `e` is typed from these declarations).
 * 3. Run `deno run -A services/config/readme_table.ts` to regenerate the README table
 *    (`tests/services/config/readme_test.ts` fails until README.md matches).
 *
 * @module
 */
import { z } from "zod";
import type { CheckContext, Setting } from "./declaration.ts";
import { API_KEY_SETTINGS } from "./settings/api_keys.ts";
import { AUTH_SETTINGS } from "./settings/auth.ts";
import { HTTP_SETTINGS } from "./settings/http.ts";
import { LIMIT_SETTINGS } from "./settings/limits.ts";
import { MAIL_SETTINGS } from "./settings/mail.ts";
import { NOTE_SETTINGS } from "./settings/notes.ts";
import { OAUTH2_SETTINGS } from "./settings/oauth2.ts";
import { OPS_SETTINGS } from "./settings/ops.ts";
import { RUNTIME_SETTINGS } from "./settings/runtime.ts";
import { TLS_SETTINGS } from "./settings/tls.ts";
import { UPLOAD_SETTINGS } from "./settings/uploads.ts";

export type { CheckContext, Setting } from "./declaration.ts";
export { isOriginPattern } from "./declaration.ts";

/** Every environment variable, in README and `check-config` order. */
export const SETTINGS = {
  ...RUNTIME_SETTINGS,
  ...AUTH_SETTINGS,
  ...MAIL_SETTINGS,
  ...LIMIT_SETTINGS,
  ...API_KEY_SETTINGS,
  ...NOTE_SETTINGS,
  ...OAUTH2_SETTINGS,
  ...HTTP_SETTINGS,
  ...TLS_SETTINGS,
  ...UPLOAD_SETTINGS,
  ...OPS_SETTINGS,
};

/** The name of a declared setting. */
export type SettingName = keyof typeof SETTINGS;

/** The declarations, untyped per entry, for code that walks all of them. */
export function settingEntries(): [SettingName, Setting][] {
  return Object.entries(SETTINGS) as [SettingName, Setting][];
}

/** Names that may also be given as `<NAME>_FILE`. */
export function fileSettingNames(): SettingName[] {
  return settingEntries().filter(([, s]) => s.secret || s.fromFile).map(([name]) => name);
}

/** The zod schema of the whole environment, built from {@linkcode SETTINGS}. */
export const ENV_SCHEMA = z.object(
  Object.fromEntries(settingEntries().map(([name, s]) => [name, s.schema])) as {
    [K in SettingName]: (typeof SETTINGS)[K]["schema"];
  },
);

/** The parsed environment: one typed value per setting. */
export type ParsedEnv = z.output<typeof ENV_SCHEMA>;

/** Runs every declaration's `check`, in declaration order. */
export function checkSettings(env: ParsedEnv, context: Omit<CheckContext, "settings">): string[] {
  const problems: string[] = [];
  const values = env as Readonly<Record<string, unknown>>;
  for (const [name, s] of settingEntries()) {
    const found = s.check?.(values[name], { ...context, settings: values });
    if (typeof found === "string") problems.push(found);
    else if (found !== undefined) problems.push(...found);
  }
  return problems;
}
