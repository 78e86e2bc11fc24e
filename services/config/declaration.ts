/**
 * The shape of one setting declaration, and the zod building blocks declarations share.
 * The declarations themselves are in `settings/*.ts`, assembled in `settings.ts`.
 *
 * @module
 */
import { z } from "zod";
import type { Config } from "./model.ts";

/** What a {@linkcode Setting.check} sees besides its own value. */
export interface CheckContext {
  readonly production: boolean;
  /** Every parsed setting by name, for checks that span several. */
  readonly settings: Readonly<Record<string, unknown>>;
  /** The environment after `.env` and `<NAME>_FILE`, before empty values are dropped. */
  readonly raw: Readonly<Record<string, string | undefined>>;
}

/** The declaration of one environment variable. */
export interface Setting<S extends z.ZodType = z.ZodType> {
  /** Validates the raw string (absent when unset or empty); holds the default. */
  readonly schema: S;
  /** README "meaning" cell (Markdown, one line). */
  readonly doc: string;
  /** README "default" cell (Markdown) when the schema's default does not say it all. */
  readonly defaultDoc?: string;
  /** A credential: may be given as `<NAME>_FILE`; `show` must not reveal it. */
  readonly secret?: true;
  /** May be given as `<NAME>_FILE` although not a secret. */
  readonly fromFile?: true;
  /** Key of the `check-config` entry. @default the variable name */
  readonly showAs?: string;
  /** The `check-config` entry; without it the setting is not printed. */
  show?(config: Config): unknown;
  /** Problems the schema cannot express, in the project's message style (`"NAME" must ...`). */
  check?(value: z.output<S>, context: CheckContext): string | readonly string[] | undefined;
}

/** Keeps `S` so that `check` sees the parsed type and `loadConfig()` gets a typed result. */
export function setting<S extends z.ZodType>(declaration: Setting<S>): Setting<S> {
  return declaration;
}

/** `true`/`1` or `false`/`0`. */
export const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
/** A TCP port, 0 to 65535. */
export const port = z.coerce.number().int().min(0).max(65535);
/** An integer ≥ 1. */
export const positiveInt = z.coerce.number().int().positive();
/** An integer ≥ 0. */
export const nonNegativeInt = z.coerce.number().int().min(0);
/** An `http:` or `https:` URL. */
export const httpUrl = z.url({ protocol: /^https?$/ });
/** `N/unit`, as `parseRateLimit()` in services/limits/rate_limiter.ts reads it. */
export const rate = z.string().regex(
  /^[1-9]\d{0,8}\/(second|minute|hour|day|min|s|m|h|d)$/,
  'must look like "5/minute" (unit second, minute, hour or day)',
);
/** A list split on `separator`, entries trimmed, empty ones dropped; unset is empty. */
export function list(
  separator: RegExp,
): z.ZodPipe<z.ZodDefault<z.ZodString>, z.ZodTransform<string[], string>> {
  return z.string().default("").transform((v) =>
    v.split(separator).map((s) => s.trim()).filter((s) => s !== "")
  );
}

/** True for `scheme://host[:port]`, where the host may start with one `*.` label. */
export function isOriginPattern(value: string): boolean {
  return /^https?:\/\/(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/
    .test(value);
}
