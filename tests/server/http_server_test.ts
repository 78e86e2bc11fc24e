import { startHttpServer } from "../../server/http_server.ts";
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
