import { createClamdScanner } from "../../../services/uploads/scanner.ts";
import { ScannerUnavailableError } from "../../../services/core/errors.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "../../_helpers/assert.ts";
import { clamdUnavailableReason, startClamd, startFakeClamd } from "../../_helpers/clamd.ts";
import { EICAR } from "../../_helpers/files.ts";
import { freePort, silentServer } from "../../_helpers/net.ts";
import { holdTimeouts } from "../../_helpers/timers.ts";
import { memoryLogger } from "../../_helpers/world.ts";

/** A breaker reset delay no other timer uses, so `holdTimeouts()` holds only the breaker's. */
const RESET_MS = 3_600_000;

function streamOf(text: string): ReadableStream<Uint8Array> {
  return ReadableStream.from([new TextEncoder().encode(text)]);
}

Deno.test("createClamdScanner() times out on a hung clamd and fails closed", async () => {
  // A server that accepts and never answers: the breaker's timeout must end the scan.
  await using server = silentServer();
  const scanner = createClamdScanner({
    address: `127.0.0.1:${server.port}`,
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

Deno.test("createClamdScanner() closes its circuit again once clamd answers", async (t) => {
  // The breaker's reset timer is held, not slept through: fire() is "resetTimeoutMs passed".
  using reset = holdTimeouts(RESET_MS);
  const port = freePort();
  const logger = memoryLogger();
  const scanner = createClamdScanner({
    address: `127.0.0.1:${port}`,
    logger,
    timeoutMs: 500,
    breaker: { volumeThreshold: 1, resetTimeoutMs: RESET_MS },
  });
  try {
    await assertRejects(() => scanner.scan(streamOf("x")), ScannerUnavailableError);
    assert(logger.lines.some((line) => line.includes("scanner circuit opened")));
    assertEquals(reset.pending(), 1, "opening the circuit scheduled its reset");

    await using clamd = startFakeClamd({ port });
    await t.step(
      "until resetTimeoutMs passes, scans fail fast without reaching clamd",
      async () => {
        await assertRejects(() => scanner.scan(streamOf("x")), ScannerUnavailableError);
        assertEquals(clamd.scans(), 0);
      },
    );
    await t.step("then one trial scan goes through and closes it", async () => {
      reset.fire();
      assert(logger.lines.some((line) => line.includes("scanner circuit half-open")));
      assertEquals(await scanner.scan(streamOf("x")), { clean: true });
      assert(logger.lines.some((line) => line.includes("scanner circuit closed")));
      assertEquals(await scanner.scan(streamOf("y")), { clean: true });
      assertEquals(clamd.scans(), 2);
    });
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
