import type { Logger } from "../services/core/logger.ts";

/** Options of {@linkcode startHttpServer}. */
export interface HttpServerOptions {
  handler: Deno.ServeHandler<Deno.NetAddr>;
  hostname: string;
  /** 0 picks a free port. */
  port: number;
  logger: Logger;
  /** PEM certificate and key; when present the server speaks HTTPS only (rustls: TLS 1.2 and 1.3). */
  tls?: { cert: string; key: string };
  /** A plain-HTTP listener that answers everything with 308 to `redirectOrigin`. */
  redirect?: { port: number; origin: string };
  /** Upper bound for finishing in-flight requests on shutdown. @default 10000 */
  shutdownTimeoutMs?: number;
}

/** A running server. */
export interface HttpServer {
  readonly addr: Deno.NetAddr;
  readonly redirectAddr: Deno.NetAddr | undefined;
  /** Stops accepting, waits (bounded) for in-flight requests, then resolves. */
  shutdown(): Promise<void>;
}

/** Starts the listener(s); they are accepting when this returns. */
export function startHttpServer(options: HttpServerOptions): HttpServer {
  const { logger } = options;
  const timeoutMs = options.shutdownTimeoutMs ?? 10_000;
  const main = listen({
    hostname: options.hostname,
    port: options.port,
    handler: options.handler,
    ...(options.tls === undefined ? {} : { cert: options.tls.cert, key: options.tls.key }),
  });
  let redirect: Listening | undefined;
  if (options.redirect !== undefined) {
    const origin = options.redirect.origin.replace(/(?<!\/)\/+$/, "");
    redirect = listen({
      hostname: options.hostname,
      port: options.redirect.port,
      handler: (req) => {
        const url = new URL(req.url);
        // The target origin is configured, never taken from Host, so this cannot be an open redirect.
        return new Response(null, {
          status: 308,
          headers: { Location: `${origin}${url.pathname}${url.search}` },
        });
      },
    });
  }
  logger.info("listening", {
    url: `${
      options.tls === undefined ? "http" : "https"
    }://${main.addr.hostname}:${main.addr.port}`,
    redirect_port: redirect?.addr.port,
  });
  return {
    addr: main.addr,
    redirectAddr: redirect?.addr,
    async shutdown() {
      const all = Promise.all([main.server.shutdown(), redirect?.server.shutdown()]);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutMs);
      });
      const outcome = await Promise.race([all.then(() => "done" as const), timedOut]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        logger.warn("shutdown timed out; abandoning in-flight requests", { timeout_ms: timeoutMs });
      } else {
        logger.info("shutdown complete");
      }
    },
  };
}

interface Listening {
  server: Deno.HttpServer<Deno.NetAddr>;
  addr: Deno.NetAddr;
}

function listen(
  options: Deno.ServeTcpOptions & Partial<Deno.TlsCertifiedKeyPem> & {
    handler: Deno.ServeHandler<Deno.NetAddr>;
  },
): Listening {
  // onListen is replaced so Deno does not print its own banner; we log instead.
  const server = Deno.serve({ ...options, onListen: () => {} });
  return { server, addr: server.addr };
}
