/**
 * Server-side timeouts (security review #10: "connections with partial headers or a
 * stalled body stay open at least 45 s"): the default plain-HTTP listener cuts off
 * slow headers, stalled bodies and idle keep-alive connections, and 200 half-open
 * connections do not stop /health from answering.
 */
import { SERVER_TIMEOUTS, startBoundedHttpServer } from "../../server/http_server.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { memoryLogger } from "../_helpers/world.ts";

const encoder = new TextEncoder();

/** Writes `payload`, then reads until the server closes; returns ms to close and what it sent. */
async function heldOpen(port: number, payload: string): Promise<{ ms: number; reply: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const started = performance.now();
  await conn.write(encoder.encode(payload));
  let reply = "";
  const buf = new Uint8Array(1024);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      reply += new TextDecoder().decode(buf.subarray(0, n));
    }
  } catch (error) {
    // A reset is the server closing on us too.
    if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
  } finally {
    conn.close();
  }
  return { ms: performance.now() - started, reply };
}

Deno.test("the node listener bounds header, body and idle time (slow-loris)", async (t) => {
  const server = await startBoundedHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    logger: memoryLogger(),
    handler: async (req) => {
      if (req.method === "POST") await req.text();
      return new Response('{"status":"ok"}', { headers: { "content-type": "application/json" } });
    },
  });
  const { port } = server.addr;
  const slack = SERVER_TIMEOUTS.checkEveryMs + 2_000;
  try {
    const partialHeaders = heldOpen(port, "GET /health HTTP/1.1\r\nHost: x\r\n");
    const stalledBody = heldOpen(
      port,
      "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
    );
    const idle = heldOpen(port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    // 200 more half-open connections while the probe keeps answering.
    const crowd = await Promise.all(
      Array.from({ length: 200 }, () => Deno.connect({ hostname: "127.0.0.1", port })),
    );
    for (const conn of crowd) await conn.write(encoder.encode("GET / HTTP/1.1\r\nHo"));
    await t.step("/health answers while 200 connections hang half-open", async () => {
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        assertEquals(res.status, 200);
        await res.body?.cancel();
        assert(performance.now() - started < 1_000);
      }
    });
    await t.step(
      "an idle keep-alive connection is closed after the keep-alive timeout",
      async () => {
        const { ms, reply } = await idle;
        assert(reply.startsWith("HTTP/1.1 200"), reply);
        assert(ms < SERVER_TIMEOUTS.keepAliveMs + slack, `closed after ${Math.round(ms)} ms`);
      },
    );
    await t.step("partial headers are cut off after the header timeout", async () => {
      const { ms, reply } = await partialHeaders;
      assert(ms < SERVER_TIMEOUTS.headersMs + slack, `closed after ${Math.round(ms)} ms`);
      assert(reply === "" || reply.startsWith("HTTP/1.1 408"), reply);
    });
    await t.step("a stalled body is cut off after the request timeout", async () => {
      const { ms, reply } = await stalledBody;
      assert(ms < SERVER_TIMEOUTS.requestMs + slack, `closed after ${Math.round(ms)} ms`);
      assert(reply === "" || reply.startsWith("HTTP/1.1 408"), reply);
    });
    for (const conn of crowd) conn.close();
  } finally {
    await server.shutdown();
  }
});
