/**
 * The one place that knows the Deno KV key schema. Keys are
 * `[collection, ...ids]`; indexes store the primary id, never a copy.
 */

/** Key of the readiness probe record. */
export function healthKey(): ["health", "probe"] {
  return ["health", "probe"];
}
