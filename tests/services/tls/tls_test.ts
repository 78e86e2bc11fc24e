import { inspectIdentity, TlsIdentityError } from "../../../services/tls/certificate.ts";
import { createFileCertificateSource } from "../../../services/tls/file_source.ts";
import { createTlsService, EXPIRY_WARNING_SECONDS } from "../../../services/tls/tls.ts";
import { assert, assertEquals, assertThrows } from "../../_helpers/assert.ts";
import { fingerprintOf, makeCertificate, makeSelfSigned } from "../../_helpers/tls.ts";
import { waitFor } from "../../_helpers/wait.ts";
import { FakeClock, memoryLogger } from "../../_helpers/world.ts";

Deno.test("inspectIdentity() accepts ECDSA P-256 and RSA 3072, refuses weaker or mismatched pairs", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await t.step("ECDSA P-256 and RSA 3072 are accepted", async () => {
      assertEquals(inspectIdentity(await makeCertificate(dir)).keyType, "ECDSA P-256");
      assertEquals(
        inspectIdentity(await makeCertificate(dir, { key: "rsa-3072" })).keyType,
        "RSA 3072",
      );
    });
    await t.step("RSA 2048 is refused", async () => {
      const weak = await makeCertificate(dir, { key: "rsa-2048" });
      assert(assertThrows(() => inspectIdentity(weak), TlsIdentityError).message.includes("3072"));
    });
    await t.step("ECDSA on another curve is refused", async () => {
      const p384 = await makeCertificate(dir, { key: "ec-p384" });
      assert(assertThrows(() => inspectIdentity(p384), TlsIdentityError).message.includes("P-256"));
    });
    await t.step("a key of another certificate is refused", async () => {
      const a = await makeCertificate(dir);
      const b = await makeCertificate(dir);
      const error = assertThrows(
        () => inspectIdentity({ cert: a.cert, key: b.key }),
        TlsIdentityError,
      );
      assert(error.message.includes("does not belong"));
    });
    await t.step("garbage is refused without echoing it", () => {
      const error = assertThrows(
        () => inspectIdentity({ cert: "not a cert", key: "SECRET-KEY-MATERIAL" }),
        TlsIdentityError,
      );
      assert(!error.message.includes("SECRET"));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TlsService.certificateStatus() counts down to expiry and warns under 14 days", async () => {
  // X.509 times have whole seconds.
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  const clock = new FakeClock(now);
  const logger = memoryLogger();
  const tls = createTlsService({ clock, logger, refuseExpired: true });
  assertEquals(tls.certificateStatus(), null);
  const pair = await makeSelfSigned(now, new Date(now.getTime() + 30 * 86_400_000));
  const changed: string[] = [];
  tls.onChange((identity) => changed.push(identity.cert));
  tls.install(pair, "file");
  assertEquals(changed, [pair.cert]);
  assertEquals(tls.certificateStatus()?.secondsToExpiry, 30 * 86_400);
  assert(!logger.lines.some((l) => l.includes("expires soon")));
  clock.advance(30 * 86_400_000 - EXPIRY_WARNING_SECONDS * 1000 + 1000);
  tls.checkExpiry();
  const warning = logger.lines.find((l) => l.includes("expires soon"));
  assert(warning !== undefined, "no warning under 14 days");
  assertEquals(JSON.parse(warning).level, "warn");
  assertEquals(JSON.parse(warning).alert, "tls_certificate_expiry");
  assertEquals(tls.certificateStatus()?.secondsToExpiry, EXPIRY_WARNING_SECONDS - 1);
});

Deno.test("TlsService.install() refuses an expired certificate when told to (production) and keeps the old one", async () => {
  const now = new Date();
  const expired = await makeSelfSigned(
    new Date(now.getTime() - 10 * 86_400_000),
    new Date(now.getTime() - 86_400_000),
  );
  const strict = createTlsService({
    clock: new FakeClock(now),
    logger: memoryLogger(),
    refuseExpired: true,
  });
  const good = await makeSelfSigned(now, new Date(now.getTime() + 86_400_000));
  strict.install(good, "file");
  assert(
    assertThrows(() => strict.install(expired, "file"), TlsIdentityError).message.includes(
      "expired",
    ),
  );
  assertEquals(strict.current()?.cert, good.cert);
  const lenient = createTlsService({
    clock: new FakeClock(now),
    logger: memoryLogger(),
    refuseExpired: false,
  });
  assert(lenient.install(expired, "file").secondsToExpiry < 0);
});

Deno.test("createFileCertificateSource() reloads a changed pair, refuses a broken one and keeps the old", async (t) => {
  const dir = await Deno.makeTempDir();
  const certFile = `${dir}/tls.crt`;
  const keyFile = `${dir}/tls.key`;
  try {
    const first = await makeCertificate(dir, { name: "first" });
    await Deno.writeTextFile(certFile, first.cert);
    await Deno.writeTextFile(keyFile, first.key);
    const logger = memoryLogger();
    const tls = createTlsService({ clock: new FakeClock(new Date()), logger, refuseExpired: true });
    const source = createFileCertificateSource({ certFile, keyFile, tls, logger, debounceMs: 50 });
    await source.load();
    using _watch = source.watch();
    const second = await makeCertificate(dir, { name: "second" });
    await t.step("a mismatched pair (new cert, old key) is refused with a log line", async () => {
      assertEquals(await source.reload("test"), true);
      await Deno.writeTextFile(certFile, second.cert);
      await waitFor(
        "the refusal log line",
        () =>
          logger.lines.some((l) => l.includes("reload refused") && l.includes("does not belong")),
      );
      assertEquals(tls.current()?.cert, first.cert);
      assert(!logger.lines.some((l) => l.includes("BEGIN")), "key or certificate material logged");
    });
    await t.step(
      "then the matching key arrives and the file change installs the pair",
      async () => {
        await Deno.writeTextFile(keyFile, second.key);
        await waitFor("the new certificate", () => tls.current()?.cert === second.cert);
        assertEquals(tls.certificateStatus()?.fingerprint256, await fingerprintOf(second.cert));
      },
    );
    await t.step(
      "a weak key written in place is refused by an explicit reload (SIGHUP)",
      async () => {
        const kept = tls.current()?.cert;
        const weak = await makeCertificate(dir, { key: "rsa-2048", name: "weak" });
        await Deno.mkdir(`${dir}/staged`);
        await Deno.writeTextFile(`${dir}/staged/tls.crt`, weak.cert);
        await Deno.writeTextFile(`${dir}/staged/tls.key`, weak.key);
        const staged = createFileCertificateSource({
          certFile: `${dir}/staged/tls.crt`,
          keyFile: `${dir}/staged/tls.key`,
          tls,
          logger,
        });
        assertEquals(await staged.reload("SIGHUP"), false);
        assertEquals(tls.current()?.cert, kept);
        assert(logger.lines.some((l) => l.includes("reload refused") && l.includes("3072")));
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
