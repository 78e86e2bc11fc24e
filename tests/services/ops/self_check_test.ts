import { createAuditService } from "../../../services/core/audit.ts";
import { auditKey } from "../../../services/core/kv_keys.ts";
import { createMetrics } from "../../../services/ops/metrics.ts";
import { certificateExpiry, createSelfCheck } from "../../../services/ops/self_check.ts";
import { assertEquals, assertMatch } from "../../_helpers/assert.ts";
import { opensslAvailable } from "../../_helpers/smtp.ts";
import { auditTypes, FakeClock, memoryLogger } from "../../_helpers/world.ts";

async function selfSignedPem(days: number): Promise<string> {
  const dir = await Deno.makeTempDir();
  try {
    const { success } = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
        "-days",
        String(days),
        "-subj",
        "/CN=localhost",
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!success) throw new Error("openssl failed");
    return await Deno.readTextFile(`${dir}/cert.pem`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "the self-check reports certificate expiry as a metric and raises it within 14 days",
  ignore: !await opensslAvailable(),
  async fn() {
    using kv = await Deno.openKv(":memory:");
    const pem = await selfSignedPem(10);
    const clock = new FakeClock(new Date());
    const metrics = createMetrics({ version: "test" });
    const audit = createAuditService({ kv, clock, logger: memoryLogger() });
    const check = createSelfCheck({
      kv,
      clock,
      logger: memoryLogger(),
      audit,
      metrics,
      signingKey: undefined,
      retentionDays: 365,
      certificatePem: pem,
    });
    const seconds = Math.floor((certificateExpiry(pem).getTime() - clock.now().getTime()) / 1000);
    assertMatch(await metrics.render(), new RegExp(`bulwark_tls_cert_expiry_seconds ${seconds}`));
    assertEquals(await check.run(), ["tls_certificate"]);
    assertEquals((await auditTypes(kv)).includes("ops.tls_certificate_expiring"), true);
  },
});

Deno.test("the self-check records a broken audit chain", async () => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const audit = createAuditService({ kv, clock, logger: memoryLogger() });
  const check = createSelfCheck({
    kv,
    clock,
    logger: memoryLogger(),
    audit,
    metrics: createMetrics({ version: "t" }),
    signingKey: undefined,
    retentionDays: 365,
  });
  assertEquals(await check.run(), []);
  const first = await audit.record({ type: "auth.login", outcome: "success" });
  await audit.record({ type: "auth.login", outcome: "success" });
  await kv.set(auditKey(first.id), { ...first, type: "auth.logout" });
  assertEquals(await check.run(), ["audit_chain"]);
  assertEquals((await auditTypes(kv)).includes("ops.audit_verify_failed"), true);
});
