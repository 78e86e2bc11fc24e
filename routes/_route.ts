import type { MiddlewareHandler } from "hono";
import { describeRoute, resolver } from "hono-openapi";
import { z } from "zod";
import { type RoutePolicy, withRoutePolicy } from "../middleware/route_policy.ts";

type DescribeSpec = Parameters<typeof describeRoute>[0];
type Responses = NonNullable<DescribeSpec["responses"]>;

/** Credentials a route accepts, for its OpenAPI `security`. */
export type RouteAuth = "none" | "bearer" | "bearer_or_api_key";

/** One route's OpenAPI description and its policy (rate class, body, password expiry). */
export interface RouteSpec {
  readonly summary: string;
  readonly tags: readonly string[];
  readonly responses: Responses;
  /** @default "none" */
  readonly auth?: RouteAuth;
  readonly description?: string;
  readonly requestBody?: DescribeSpec["requestBody"];
  /** @default DEFAULT_ROUTE_POLICY */
  readonly policy?: Partial<RoutePolicy>;
}

const SECURITY: Record<RouteAuth, DescribeSpec["security"]> = {
  none: undefined,
  bearer: [{ bearer: [] }],
  bearer_or_api_key: [{ bearer: [] }, { apiKey: [] }],
};

/**
 * Describes a route for `/openapi.json` and declares its policy, in one
 * middleware placed first in the route's chain.
 */
export function route(spec: RouteSpec): MiddlewareHandler {
  const security = SECURITY[spec.auth ?? "none"];
  const described = describeRoute({
    summary: spec.summary,
    tags: [...spec.tags],
    responses: spec.responses,
    ...(security === undefined ? {} : { security }),
    ...(spec.description === undefined ? {} : { description: spec.description }),
    ...(spec.requestBody === undefined ? {} : { requestBody: spec.requestBody }),
  });
  return spec.policy === undefined ? described : withRoutePolicy(described, spec.policy);
}

/** A JSON response of `schema` for a route's `responses`. */
export function jsonResponse(schema: z.ZodType, description: string): Responses[string] {
  return { description, content: { "application/json": { schema: resolver(schema) } } };
}

/** Opaque resource ids (API.md): 128-bit base64url, 22 characters, and legacy lengths up to 64. */
export const IdParam = z.strictObject({ id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/) });

/** A submitted password: a generous cap; the policy enforces bcrypt's 72-byte limit clearly. */
export const Password = z.string().min(1).max(1024);

/** An email address as typed, trimmed and bounded (RFC 5321 path limit). */
export const Email = z.string().trim().max(254).pipe(z.email());

/** An email-or-username login identifier: trimmed and bounded, not format-checked. */
export const LoginIdentifier = z.string().trim().min(1).max(254);

/** `limit` of a paginated listing: 1-100, default 20. */
export const Limit = z.string().regex(/^\d{1,3}$/).transform(Number)
  .pipe(z.number().int().min(1).max(100)).optional();

/** An opaque pagination cursor (checked again when decoded). */
export const Cursor = z.string().min(1).max(1024).regex(/^[A-Za-z0-9_-]+$/).optional();

/** A page of `item`s with the cursor of the next one. */
export function pageOf(item: z.ZodType): z.ZodType {
  return z.object({ items: z.array(item), next_cursor: z.string().nullable() });
}
