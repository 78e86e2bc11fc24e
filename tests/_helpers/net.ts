/** Loopback sockets for tests that need a real peer. */

/** A loopback port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** A TCP server that accepts connections and never says a word; `await using` stops it. */
export interface SilentServer extends AsyncDisposable {
  readonly port: number;
  /** Connections accepted so far. */
  connections(): number;
}

/** Starts a {@linkcode SilentServer}: a hung SMTP server or clamd, on 127.0.0.1. */
export function silentServer(): SilentServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) conns.push(conn);
  })();
  return {
    port: listener.addr.port,
    connections: () => conns.length,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const conn of conns) {
        try {
          conn.close();
        } catch (error) {
          // The peer may already have gone after its timeout; that is the state we want.
          if (!(error instanceof Deno.errors.BadResource)) throw error;
        }
      }
    },
  };
}
