/** Building in-process requests and reading their answers. */

/** Anything with Hono's `request()`: an app, or a world's app. */
export interface Requester {
  request(path: string, init?: RequestInit, env?: unknown): Response | Promise<Response>;
}

/** Env bindings as Deno.serve would pass them, for `app.request(path, init, peer(ip))`. */
export function peer(hostname = "203.0.113.7"): { remoteAddr: Deno.NetAddr } {
  return { remoteAddr: { transport: "tcp", hostname, port: 40000 } };
}

/** Parses a JSON body as a plain record. */
export async function json(res: Response): Promise<Record<string, unknown>> {
  return await res.json() as Record<string, unknown>;
}

/** A JSON request init. */
export function jsonInit(
  method: string,
  body: unknown,
  headers: Record<string, string> = {},
): RequestInit {
  return {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  };
}

/** Bearer header for an access token. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
