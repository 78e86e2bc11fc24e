import { SERVER_TIMEOUTS, startHttpsServer } from "../../server/http_server.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { fingerprintOf, handshake, makeCertificate, servedFingerprint } from "../_helpers/tls.ts";
import { memoryLogger, openWorld } from "../_helpers/world.ts";

Deno.test("startHttpsServer() serves the app over TLS 1.3 only by default, and redirects plain HTTP", async (t) => {
  const dir = await Deno.makeTempDir();
  await using w = await openWorld();
  const { ca, ...identity } = await makeCertificate(dir);
  const server = await startHttpsServer({
    hostname: "127.0.0.1",
    port: 0,
    logger: memoryLogger(),
    identity,
    redirect: {
      port: 0,
      origin: "https://bulwark.example",
      acmeChallenge: (token) => token === "known-token" ? "known-token.thumbprint" : undefined,
    },
    handler: (req, info) => w.app.fetch(req, info),
  });
  const client = Deno.createHttpClient({ caCerts: [ca] });
  try {
    await t.step("HTTPS answers /health with the security headers, HSTS included", async () => {
      const res = await fetch(`https://localhost:${server.addr.port}/health`, { client });
      assertEquals(res.status, 200);
      assertEquals(await res.json(), { status: "ok" });
      assert(res.headers.get("strict-transport-security")?.includes("max-age="));
    });
    await t.step("the client's socket address reaches the app (request log ip)", async () => {
      const logger = w.deps.logger as ReturnType<typeof memoryLogger>;
      const res = await fetch(`https://localhost:${server.addr.port}/health`, { client });
      await res.body?.cancel();
      const line = logger.lines.findLast((l) => l.includes('"request"'));
      assert(line?.includes('"ip":"127.0.0.1"'), String(line));
    });
    await t.step(
      "an endless chunked body gets 413 without being read (body limit over node:https)",
      async () => {
        let sent = 0;
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            sent += 8192;
            if (sent > 64 * 1024 * 1024) controller.close();
            else controller.enqueue(new Uint8Array(8192));
          },
        });
        const res = await fetch(`https://localhost:${server.addr.port}/auth/login`, {
          method: "POST",
          body,
          headers: { "content-type": "application/json" },
          client,
        });
        assertEquals(res.status, 413);
        assertEquals((await res.json()).code, "payload_too_large");
        assert(sent < 8 * 1024 * 1024, `client had sent ${sent} bytes before the refusal`);
      },
    );
    await t.step(
      "a connection that never starts the handshake is closed (slow loris)",
      async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
        const started = performance.now();
        const timer = Promise.withResolvers<"held">();
        const id = setTimeout(() => timer.resolve("held"), SERVER_TIMEOUTS.headersMs + 5_000);
        try {
          // Nothing is sent: the server must hang up (EOF or reset), not wait for Node's 120 s.
          const outcome = await Promise.race([
            conn.read(new Uint8Array(64)).then(() => "closed", () => "closed"),
            timer.promise,
          ]);
          assertEquals(outcome, "closed");
          assert(performance.now() - started >= SERVER_TIMEOUTS.headersMs - 1_000);
        } finally {
          clearTimeout(id);
          conn.close();
        }
      },
    );
    await t.step("TLS 1.3 is accepted; 1.2, 1.1 and 1.0 are refused", async () => {
      assert(await handshake(server.addr.port, "-tls1_3"));
      assert(!await handshake(server.addr.port, "-tls1_2"));
      assert(!await handshake(server.addr.port, "-tls1_1"));
      assert(!await handshake(server.addr.port, "-tls1"));
    });
    await t.step("plain HTTP gets 308 to the configured origin, never to Host", async () => {
      const res = await fetch(
        `http://127.0.0.1:${server.redirectAddr?.port}/auth/login?next=%2Fx`,
        {
          redirect: "manual",
          headers: { host: "evil.example" },
        },
      );
      assertEquals(res.status, 308);
      assertEquals(res.headers.get("location"), "https://bulwark.example/auth/login?next=%2Fx");
      await res.body?.cancel();
    });
    await t.step("ACME HTTP-01: a known token gets its key authorization, others 404", async () => {
      const base = `http://127.0.0.1:${server.redirectAddr?.port}/.well-known/acme-challenge`;
      const known = await fetch(`${base}/known-token`);
      assertEquals([known.status, await known.text()], [200, "known-token.thumbprint"]);
      const unknown = await fetch(`${base}/other-token`);
      assertEquals(unknown.status, 404);
      await unknown.body?.cancel();
      const traversal = await fetch(`${base}/..%2f..%2fetc`, { redirect: "manual" });
      assertEquals(traversal.status, 308);
      await traversal.body?.cancel();
    });
  } finally {
    client.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("startHttpsServer() swaps the certificate for new connections without dropping open ones", async () => {
  const dir = await Deno.makeTempDir();
  const first = await makeCertificate(dir, { name: "first" });
  const second = await makeCertificate(dir, { name: "second" });
  const { promise: entered, resolve: enter } = Promise.withResolvers<void>();
  const { promise: release, resolve: releaseNow } = Promise.withResolvers<void>();
  const server = await startHttpsServer({
    hostname: "127.0.0.1",
    port: 0,
    logger: memoryLogger(),
    identity: first,
    handler: async (req) => {
      if (new URL(req.url).pathname === "/slow") {
        enter();
        await release;
      }
      return new Response("ok");
    },
  });
  const client = Deno.createHttpClient({ caCerts: [first.ca] });
  try {
    assertEquals(await servedFingerprint(server.addr.port), await fingerprintOf(first.cert));
    const inflight = fetch(`https://localhost:${server.addr.port}/slow`, { client });
    await entered;
    server.setIdentity(second);
    assertEquals(await servedFingerprint(server.addr.port), await fingerprintOf(second.cert));
    // The connection opened before the swap finishes its request on the old certificate.
    releaseNow();
    const res = await inflight;
    assertEquals([res.status, await res.text()], [200, "ok"]);
    // The protocol floor survives the swap (setSecureContext replaces every option).
    assert(!await handshake(server.addr.port, "-tls1_2"));
  } finally {
    client.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("startHttpsServer() with TLS 1.2 allowed offers only ECDHE + AEAD suites on 1.2", async (t) => {
  const dir = await Deno.makeTempDir();
  // Every TLS 1.2 suite this openssl knows, legacy and export ones included.
  const all = new TextDecoder().decode(
    (await new Deno.Command("openssl", {
      args: ["ciphers", "-tls1_2", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
      stdout: "piped",
    }).output()).stdout,
  ).trim().split(":");
  assert(all.length > 50, `only ${all.length} suites to try`);
  try {
    for (const key of ["ec-p256", "rsa-3072"] as const) {
      await t.step(key, async () => {
        const server = await startHttpsServer({
          hostname: "127.0.0.1",
          port: 0,
          logger: memoryLogger(),
          identity: await makeCertificate(dir, { key }),
          minVersion: "TLSv1.2",
          handler: () => new Response("ok"),
        });
        try {
          const accepted: string[] = [];
          // A few handshakes at a time: one by one, 158 suites take most of a minute; more at once
          // starve timing-sensitive tests running in parallel.
          for (let i = 0; i < all.length; i += 4) {
            const batch = all.slice(i, i + 4);
            const ok = await Promise.all(
              batch.map((suite) => handshake(server.addr.port, "-tls1_2", suite)),
            );
            accepted.push(...batch.filter((_, j) => ok[j]));
          }
          assert(accepted.length > 0, "TLS 1.2 was not offered at all");
          for (const suite of accepted) {
            assert(/^ECDHE-/.test(suite), `${suite} lacks forward secrecy`);
            assert(/GCM|CHACHA20-POLY1305/.test(suite), `${suite} is not an AEAD suite`);
          }
        } finally {
          await server.shutdown();
        }
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("startHttpsServer() finishes an in-flight request on shutdown, then refuses connections", async () => {
  const dir = await Deno.makeTempDir();
  const tls = await makeCertificate(dir);
  const { promise: entered, resolve: enter } = Promise.withResolvers<void>();
  const { promise: release, resolve: releaseNow } = Promise.withResolvers<void>();
  const server = await startHttpsServer({
    hostname: "127.0.0.1",
    port: 0,
    logger: memoryLogger(),
    identity: tls,
    handler: async () => {
      enter();
      await release;
      return new Response("done");
    },
  });
  const client = Deno.createHttpClient({ caCerts: [tls.ca] });
  try {
    const inflight = fetch(`https://localhost:${server.addr.port}/`, { client });
    await entered;
    const stopping = server.shutdown();
    releaseNow();
    assertEquals(await (await inflight).text(), "done");
    await stopping;
    assert(!await handshake(server.addr.port, "-tls1_3"), "accepted a connection after shutdown");
  } finally {
    client.close();
    await Deno.remove(dir, { recursive: true });
  }
});
