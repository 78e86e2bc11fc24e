import { startHttpServer } from "../../server/http_server.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { memoryLogger, openWorld } from "../_helpers/world.ts";

async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

/** Makes a test CA and a leaf certificate for localhost/127.0.0.1 in `dir`. */
async function makeCertificate(dir: string): Promise<{ cert: string; key: string; ca: string }> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    `${dir}/ca.key`,
    "-out",
    `${dir}/ca.pem`,
    "-days",
    "1",
    "-subj",
    "/CN=Bulwark Test CA",
  ]);
  await openssl([
    "req",
    ...ec,
    "-keyout",
    `${dir}/key.pem`,
    "-out",
    `${dir}/leaf.csr`,
    "-subj",
    "/CN=localhost",
  ]);
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    `${dir}/leaf.csr`,
    "-CA",
    `${dir}/ca.pem`,
    "-CAkey",
    `${dir}/ca.key`,
    "-CAcreateserial",
    "-out",
    `${dir}/cert.pem`,
    "-days",
    "1",
    "-extfile",
    `${dir}/ext.cnf`,
  ]);
  return {
    cert: await Deno.readTextFile(`${dir}/cert.pem`),
    key: await Deno.readTextFile(`${dir}/key.pem`),
    ca: await Deno.readTextFile(`${dir}/ca.pem`),
  };
}

/** Tries a handshake at one protocol version; the client side allows legacy ciphers. */
async function handshake(port: number, flag: string): Promise<boolean> {
  const out = await new Deno.Command("openssl", {
    args: ["s_client", flag, "-cipher", "DEFAULT@SECLEVEL=0", "-connect", `127.0.0.1:${port}`],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return out.success && !new TextDecoder().decode(out.stdout).includes("Cipher is (NONE)");
}

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

Deno.test("startHttpServer() serves HTTPS with TLS 1.2+ and redirects plain HTTP with 308", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const { ca, ...tls } = await makeCertificate(dir);
    await using w = await openWorld();
    const { app } = w;
    const server = startHttpServer({
      hostname: "127.0.0.1",
      port: 0,
      logger: memoryLogger(),
      tls,
      redirect: { port: 0, origin: "https://bulwark.example" },
      handler: (req, info) => app.fetch(req, info),
    });
    const client = Deno.createHttpClient({ caCerts: [ca] });
    try {
      await t.step("HTTPS answers /health", async () => {
        const res = await fetch(`https://localhost:${server.addr.port}/health`, { client });
        assertEquals(res.status, 200);
        assertEquals(await res.json(), { status: "ok" });
      });
      await t.step("TLS 1.2 and 1.3 are accepted, 1.0 and 1.1 refused", async () => {
        assert(await handshake(server.addr.port, "-tls1_2"));
        assert(await handshake(server.addr.port, "-tls1_3"));
        assert(!await handshake(server.addr.port, "-tls1"));
        assert(!await handshake(server.addr.port, "-tls1_1"));
      });
      await t.step("plain HTTP on the redirect port gets 308 to the public origin", async () => {
        const redirectPort = server.redirectAddr?.port;
        const res = await fetch(`http://127.0.0.1:${redirectPort}/auth/login?next=%2Fx`, {
          redirect: "manual",
          headers: { host: "evil.example" },
        });
        assertEquals(res.status, 308);
        assertEquals(res.headers.get("location"), "https://bulwark.example/auth/login?next=%2Fx");
        await res.body?.cancel();
      });
    } finally {
      client.close();
      await server.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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
