import { getRequestListener } from "@hono/node-server";
import type { IncomingMessage, ServerResponse } from "node:http";
import http from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import type { TlsIdentity } from "../services/tls/certificate.ts";
import type { Logger } from "../services/core/logger.ts";

/** Options of {@linkcode startHttpServer}. */
export interface HttpServerOptions {
  handler: Deno.ServeHandler<Deno.NetAddr>;
  hostname: string;
  /** 0 picks a free port. */
  port: number;
  logger: Logger;
  /** Upper bound for finishing in-flight requests on shutdown. @default 10000 */
  shutdownTimeoutMs?: number;
}

/** A running server. */
export interface HttpServer {
  readonly addr: Deno.NetAddr;
  /** Stops accepting, waits (bounded) for in-flight requests, then resolves. */
  shutdown(): Promise<void>;
}

/**
 * How long a client may take, on the node listeners: its request headers, its
 * whole request (the body included), and an idle keep-alive connection
 * (slow-loris, OWASP). Checked every second.
 */
export const SERVER_TIMEOUTS = Object.freeze({
  headersMs: 10_000,
  requestMs: 60_000,
  keepAliveMs: 5_000,
  checkEveryMs: 1_000,
});

/**
 * Starts a plain-HTTP listener on `Deno.serve`: fastest, but it bounds neither
 * header nor body read time nor idle keep-alive connections, so it is for use
 * behind a proxy that does (`HTTP_ENGINE=deno`, or tests and benchmarks). It is
 * accepting when this returns.
 */
export function startHttpServer(options: HttpServerOptions): HttpServer {
  const { logger } = options;
  const main = listen({ hostname: options.hostname, port: options.port, handler: options.handler });
  logger.info("listening", { url: `http://${main.addr.hostname}:${main.addr.port}` });
  return {
    addr: main.addr,
    shutdown: async () => void await bounded([main.server.shutdown()], options),
  };
}

/** TLS protocol floor; 1.2 only with the explicit `TLS_ALLOW_TLS12=true`. */
export type TlsMinVersion = "TLSv1.2" | "TLSv1.3";

/** Options of {@linkcode startHttpsServer}. */
export interface HttpsServerOptions extends HttpServerOptions {
  /** The first certificate; later ones arrive through {@linkcode HttpsServer.setIdentity}. */
  identity: TlsIdentity;
  /** @default "TLSv1.3" */
  minVersion?: TlsMinVersion;
  /**
   * A plain-HTTP listener that answers ACME HTTP-01 tokens through `acmeChallenge` and everything
   * else with 308 to `origin`.
   */
  redirect?: {
    port: number;
    origin: string;
    acmeChallenge?: (token: string) => string | undefined;
  };
}

/** A running HTTPS server whose certificate can be replaced while it runs. */
export interface HttpsServer extends HttpServer {
  readonly redirectAddr: Deno.NetAddr | undefined;
  /** New connections get `identity`; open connections keep theirs. */
  setIdentity(identity: TlsIdentity): void;
}

/**
 * Starts the HTTPS listener on `node:https` (through `@hono/node-server`'s request bridge) because
 * `Deno.serve` cannot change its certificate or protocol floor while running; `setSecureContext`
 * can. Resolves once it accepts connections.
 */
export async function startHttpsServer(options: HttpsServerOptions): Promise<HttpsServer> {
  const { logger } = options;
  const minVersion = options.minVersion ?? "TLSv1.3";
  const server = https.createServer({
    cert: options.identity.cert,
    key: options.identity.key,
    minVersion,
    // The header timeout starts only after the handshake: a client that never says hello
    // would otherwise hold the connection for Node's default 120 s.
    handshakeTimeout: SERVER_TIMEOUTS.headersMs,
    ...nodeTimeouts(),
  }, nodeListener(options.handler));
  const running = await startNode(server, options);
  // The public plain-HTTP port gets the same slow-loris bounds as the HTTPS one.
  const redirect = options.redirect === undefined ? undefined : await startNode(
    http.createServer({ ...nodeTimeouts() }, nodeListener(redirectHandler(options.redirect))),
    { ...options, port: options.redirect.port },
  );
  logger.info("listening", {
    url: `https://${running.addr.hostname}:${running.addr.port}`,
    tls_min_version: minVersion,
    redirect_port: redirect?.addr.port,
  });
  return {
    addr: running.addr,
    redirectAddr: redirect?.addr,
    setIdentity(identity) {
      // setSecureContext replaces every option of the context, so the floor is passed again.
      server.setSecureContext({ cert: identity.cert, key: identity.key, minVersion });
    },
    shutdown: () => running.shutdown(redirect?.shutdown()),
  };
}

/**
 * Starts a plain-HTTP listener on `node:http` with {@linkcode SERVER_TIMEOUTS}
 * (the default, `HTTP_ENGINE=node`): a client that sends its headers or body
 * too slowly, or idles on a keep-alive connection, is cut off (408 or close),
 * so half-open connections cannot pile up. Resolves once it accepts connections.
 */
export async function startBoundedHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const server = http.createServer({ ...nodeTimeouts() }, nodeListener(options.handler));
  const running = await startNode(server, options);
  options.logger.info("listening", {
    url: `http://${running.addr.hostname}:${running.addr.port}`,
    timeouts_ms: SERVER_TIMEOUTS,
  });
  return { addr: running.addr, shutdown: () => running.shutdown() };
}

function nodeTimeouts(): http.ServerOptions {
  return {
    headersTimeout: SERVER_TIMEOUTS.headersMs,
    requestTimeout: SERVER_TIMEOUTS.requestMs,
    keepAliveTimeout: SERVER_TIMEOUTS.keepAliveMs,
    connectionsCheckingInterval: SERVER_TIMEOUTS.checkEveryMs,
  };
}

/** Methods a `Request` cannot be built with (the Fetch standard forbids them). */
const FORBIDDEN_METHODS: ReadonlySet<string> = new Set(["CONNECT", "TRACE", "TRACK"]);

/**
 * The request the app sees. The node bridge hands over its own lazy request
 * object, which Deno's `Request` constructor refuses; Hono's body limit
 * re-wraps a body of unknown length (`new Request(raw, { body })`), which
 * answered 500 to every chunked body and every body-less DELETE or POST sent
 * without `Content-Length`. Those requests become real `Request`s here; one
 * with neither `Content-Length` nor `Transfer-Encoding` has no body
 * (RFC 9112 §6.3). The common request (a GET, or a body of stated length)
 * stays lazy.
 */
function appRequest(request: Request): Request {
  const { method, headers } = request;
  if (method === "GET" || method === "HEAD" || headers.has("content-length")) return request;
  if (FORBIDDEN_METHODS.has(method)) return request;
  const init: RequestInit & { duplex?: "half" } = { method, headers, signal: request.signal };
  if (headers.has("transfer-encoding")) {
    init.body = request.body;
    init.duplex = "half";
  }
  return new Request(request.url, init);
}

/** The app's fetch handler as a `node:http` request listener (`@hono/node-server`'s bridge). */
function nodeListener(
  handler: Deno.ServeHandler<Deno.NetAddr>,
): (req: IncomingMessage, res: ServerResponse) => void {
  return getRequestListener(
    (request, env) => {
      const incoming = env.incoming as IncomingMessage;
      const outgoing = env.outgoing as ServerResponse;
      const socket: Socket = incoming.socket;
      const completed = new Promise<void>((resolve) => outgoing.once("close", () => resolve()));
      return handler(appRequest(request), {
        remoteAddr: {
          transport: "tcp",
          hostname: socket.remoteAddress ?? "",
          port: socket.remotePort ?? 0,
        },
        completed,
      });
    },
    // Hono's node bridge would otherwise replace the global Request/Response for speed.
    { overrideGlobalObjects: false },
  );
}

/** Listens, and shuts down bounded: stop accepting, let requests finish, close idle sockets. */
async function startNode(
  server: http.Server,
  options: HttpServerOptions,
): Promise<{ addr: Deno.NetAddr; shutdown(also?: Promise<void>): Promise<void> }> {
  const { promise: listening, resolve, reject } = Promise.withResolvers<void>();
  server.once("error", reject);
  server.listen(options.port, options.hostname, () => resolve());
  await listening;
  server.off("error", reject);
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  const addr: Deno.NetAddr = { transport: "tcp", hostname: address.address, port: address.port };
  const closed = new Promise<void>((resolve) => server.once("close", () => resolve()));
  return {
    addr,
    async shutdown(also) {
      server.close();
      server.closeIdleConnections();
      // Keep-alive connections that finish a request after close() go idle; close them as they do.
      const sweeper = setInterval(() => server.closeIdleConnections(), 100);
      try {
        const done = await bounded([closed, also], options);
        if (!done) server.closeAllConnections();
      } finally {
        clearInterval(sweeper);
      }
    },
  };
}

function redirectHandler(
  redirect: NonNullable<HttpsServerOptions["redirect"]>,
): Deno.ServeHandler<Deno.NetAddr> {
  const origin = redirect.origin.replace(/(?<!\/)\/+$/, "");
  return (req) => {
    const url = new URL(req.url);
    const token = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]{1,128})$/.exec(url.pathname)
      ?.[1];
    if (token !== undefined && redirect.acmeChallenge !== undefined) {
      const answer = redirect.acmeChallenge(token);
      // RFC 8555 §8.3: the key authorization as the body; unknown tokens get 404, not a redirect.
      return answer === undefined
        ? new Response("not found\n", { status: 404, headers: { "content-type": "text/plain" } })
        : new Response(answer, { headers: { "content-type": "application/octet-stream" } });
    }
    // The target origin is configured, never taken from Host, so this cannot be an open redirect.
    return new Response(null, {
      status: 308,
      headers: { Location: `${origin}${url.pathname}${url.search}` },
    });
  };
}

/** Waits for `work` up to the shutdown timeout; logs the outcome and says whether it finished. */
async function bounded(
  work: ReadonlyArray<Promise<void> | undefined>,
  options: Pick<HttpServerOptions, "logger" | "shutdownTimeoutMs">,
): Promise<boolean> {
  const timeoutMs = options.shutdownTimeoutMs ?? 10_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const outcome = await Promise.race([Promise.all(work).then(() => "done" as const), timedOut]);
  clearTimeout(timer);
  if (outcome === "timeout") {
    options.logger.warn("shutdown timed out; abandoning in-flight requests", {
      timeout_ms: timeoutMs,
    });
    return false;
  }
  options.logger.info("shutdown complete");
  return true;
}

interface Listening {
  server: Deno.HttpServer<Deno.NetAddr>;
  addr: Deno.NetAddr;
}

function listen(
  options: Deno.ServeTcpOptions & { handler: Deno.ServeHandler<Deno.NetAddr> },
): Listening {
  // onListen is replaced so Deno does not print its own banner; we log instead.
  const server = Deno.serve({ ...options, onListen: () => {} });
  return { server, addr: server.addr };
}
