import type { MiddlewareHandler, ValidationTargets } from "hono";
import { validator } from "hono-openapi";
import type { z } from "zod";
import { UnsupportedMediaTypeError, ValidationError } from "../services/core/errors.ts";

type Target = keyof ValidationTargets;

/** Exactly the media types Hono's validator parses as JSON; anything else would be read as `{}`. */
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/** True when `contentType` names a JSON body (parameters such as charset allowed). */
export function isJsonContentType(contentType: string | undefined): boolean {
  return JSON_MEDIA_TYPE.test((contentType ?? "").split(";")[0]!.trim());
}

/**
 * Validates one request part with a zod schema (the same schema feeds
 * `/openapi.json`). Failures throw {@linkcode ValidationError} with field
 * paths, never the raw zod output; a JSON route refuses other media types.
 *
 * @throws {UnsupportedMediaTypeError} for a non-JSON body on a JSON route
 * @throws {ValidationError} when the schema rejects the input
 */
// deno-lint-ignore explicit-module-boundary-types -- the inferred type carries the validated input to c.req.valid().
export function validate<T extends Target, S extends z.ZodType>(target: T, schema: S) {
  const inner = validator(target, schema, (result) => {
    if (!result.success) {
      const errors = result.error.map((issue) => ({
        path: (issue.path ?? []).map((p) => String(typeof p === "object" ? p.key : p)).join("."),
        message: issue.message,
      }));
      throw new ValidationError("Request validation failed", { errors });
    }
  });
  if (target !== "json") return inner;
  const jsonOnly: MiddlewareHandler = async function requireJson(c, next) {
    const type = c.req.header("content-type");
    // No body at all reads as `{}`: the schema then decides (optional bodies stay optional).
    const empty = type === undefined && c.req.raw.body === null;
    if (!empty && !isJsonContentType(type)) {
      throw new UnsupportedMediaTypeError("Expected an application/json body");
    }
    await next();
  };
  return Object.assign(
    (async (c, next) => {
      await jsonOnly(c, () => inner(c, next) as Promise<void>);
    }) as typeof inner,
    inner,
  );
}

/**
 * Parses `value` with `schema`, for inputs a single validator cannot describe
 * (one route taking JSON or a form).
 *
 * @throws {ValidationError} with field paths
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors = result.error.issues.map((issue) => ({
    path: issue.path.map(String).join("."),
    message: issue.message,
  }));
  throw new ValidationError("Request validation failed", { errors });
}
