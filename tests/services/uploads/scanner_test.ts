import { createClamdScanner } from "../../../services/uploads/scanner.ts";
import { ScannerUnavailableError } from "../../../services/core/errors.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "../../_assert.ts";
import { clamdUnavailableReason, startClamd } from "../../_clamd.ts";
import { EICAR } from "../../_files.ts";
import { memoryLogger } from "../../_helpers.ts";

function streamOf(text: string): ReadableStream<Uint8Array> {
  return ReadableStream.from([new TextEncoder().encode(text)]);
}

Deno.test("createClamdScanner() times out on a hung clamd and fails closed", async () => {
  // A server that accepts and never answers: the breaker's timeout must end the scan.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) conns.push(conn);
  })();
  const scanner = createClamdScanner({
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    logger: memoryLogger(),
    timeoutMs: 200,
  });
  try {
    const started = performance.now();
    const error = await assertRejects(
      () => scanner.scan(streamOf("hello")),
      ScannerUnavailableError,
    );
    assert(performance.now() - started < 2000);
    assertEquals(error.code, "scanner_unavailable");
    assert(!error.message.includes("127.0.0.1"), "the address stays out of the message");
  } finally {
    scanner.close();
    listener.close();
    await accepting;
    for (const conn of conns) conn.close();
  }
});

Deno.test("createClamdScanner() opens its circuit after repeated failures", async () => {
  const logger = memoryLogger();
  const scanner = createClamdScanner({
    address: "127.0.0.1:1",
    logger,
    timeoutMs: 500,
    breaker: { volumeThreshold: 2 },
  });
  try {
    for (let i = 0; i < 4; i++) {
      await assertRejects(() => scanner.scan(streamOf("x")), ScannerUnavailableError);
    }
    assert(logger.lines.some((line) => line.includes("scanner circuit opened")));
  } finally {
    scanner.close();
  }
});

Deno.test("createClamdScanner() refuses a malformed address", () => {
  for (const address of ["localhost", "host:99999", "tcp://x:1"]) {
    let threw = false;
    try {
      createClamdScanner({ address, logger: memoryLogger() });
    } catch (error) {
      threw = error instanceof TypeError;
    }
    assert(threw, address);
  }
});

Deno.test({
  name: "createClamdScanner() reports EICAR and passes a clean stream (real clamd)",
  ignore: (await clamdUnavailableReason()) !== null,
  async fn() {
    await using clamd = await startClamd();
    const scanner = createClamdScanner({ address: clamd.address, logger: memoryLogger() });
    try {
      const hit = await scanner.scan(streamOf(EICAR));
      assertEquals(hit.clean, false);
      if (!hit.clean) assertMatch(hit.signature, /^Eicar-Test-Signature/);
      assertEquals(await scanner.scan(streamOf("hello, world")), { clean: true });
    } finally {
      scanner.close();
    }
  },
});
