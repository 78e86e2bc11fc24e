import { startBoundedHttpServer, startHttpServer } from "../../server/http_server.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { memoryLogger, openWorld } from "../_helpers/world.ts";

Deno.test("startHttpServer() finishes an in-flight request on shutdown, then refuses new ones", async () => {
  const { promise: entered, resolve: enter } = Promise.withResolvers<void>();
  const { promise: release, resolve: releaseNow } = Promise.withResolvers<void>();
  const server = startHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    logger: memoryLogger(),
    handler: async () => {
      enter();
      await release;
      return new Response("done");
    },
  });
  const url = `http://127.0.0.1:${server.addr.port}/slow`;
  const inflight = fetch(url);
  await entered;
  const stopping = server.shutdown();
  releaseNow();
  const res = await inflight;
  assertEquals(await res.text(), "done");
  await stopping;
  let refused = false;
  try {
    await (await fetch(url)).body?.cancel();
  } catch (error) {
    refused = error instanceof TypeError;
  }
  assert(refused, "a new connection after shutdown must be refused");
});

Deno.test("startHttpServer() gives up on a stuck request after the shutdown timeout", async () => {
  const logger = memoryLogger();
  const { promise: entered, resolve: enter } = Promise.withResolvers<void>();
  const never = new AbortController();
  const server = startHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    logger,
    shutdownTimeoutMs: 100,
    handler: () => {
      enter();
      return new Promise<Response>((resolve) =>
        never.signal.addEventListener("abort", () => resolve(new Response("late")))
      );
    },
  });
  const inflight = fetch(`http://127.0.0.1:${server.addr.port}/`).then((r) => r.text(), () => "");
  await entered;
  await server.shutdown();
  assert(logger.lines.some((l) => l.includes("shutdown timed out")));
  never.abort();
  await inflight;
});

Deno.test("a real socket gets 413 for an endless chunked body without it being read", async () => {
  await using w = await openWorld();
  const { app } = w;
  app.post("/probe", async (c) => c.json({ size: (await c.req.arrayBuffer()).byteLength }));
  const server = startHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    logger: memoryLogger(),
    handler: (req, info) => app.fetch(req, info),
  });
  try {
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += 8192;
        // An endless body: the server must answer long before this stops.
        if (sent > 64 * 1024 * 1024) controller.close();
        else controller.enqueue(new Uint8Array(8192));
      },
    });
    const res = await fetch(`http://127.0.0.1:${server.addr.port}/probe`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
    });
    assertEquals(res.status, 413);
    assertEquals((await res.json()).code, "payload_too_large");
    assert(sent < 8 * 1024 * 1024, `client had sent ${sent} bytes before the refusal`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("the node listener (HTTP_ENGINE=node) takes chunked bodies and body-less DELETEs (no 500)", async (t) => {
  await using w = await openWorld();
  const { app } = w;
  app.post("/probe", async (c) => c.json({ text: await c.req.text() }));
  app.delete("/probe", async (c) => c.json({ text: await c.req.text() }));
  const server = await startBoundedHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    logger: memoryLogger(),
    handler: (req, info) => app.fetch(req, info),
  });
  const url = `http://127.0.0.1:${server.addr.port}/probe`;
  try {
    await t.step("a small chunked JSON body reaches the route whole", async () => {
      const body = ReadableStream.from([
        new TextEncoder().encode('{"a":'),
        new TextEncoder().encode("1}"),
      ]);
      const res = await fetch(url, {
        method: "POST",
        body,
        headers: { "content-type": "application/json" },
      });
      assertEquals(res.status, 200);
      assertEquals(await res.json(), { text: '{"a":1}' });
    });
    await t.step("a DELETE without Content-Length has an empty body", async () => {
      const res = await fetch(url, { method: "DELETE" });
      assertEquals(res.status, 200);
      assertEquals(await res.json(), { text: "" });
    });
    await t.step("a raw POST with neither length nor chunking has an empty body", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
      await conn.write(
        new TextEncoder().encode(
          "POST /probe HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        ),
      );
      const reply = await new Response(conn.readable).text();
      assert(reply.startsWith("HTTP/1.1 200"), reply.slice(0, 200));
      assert(reply.endsWith('{"text":""}'), reply.slice(-200));
    });
  } finally {
    await server.shutdown();
  }
});
