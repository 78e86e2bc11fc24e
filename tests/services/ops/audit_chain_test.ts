import { createAuditService } from "../../../services/core/audit.ts";
import type { AuditEvent } from "../../../services/core/audit.ts";
import { auditKey } from "../../../services/core/kv_keys.ts";
import { verifyAudit } from "../../../services/ops/audit_log.ts";
import { assert, assertEquals, assertMatch } from "../../_helpers/assert.ts";
import { FakeClock, memoryLogger } from "../../_helpers/world.ts";

const KEY = new TextEncoder().encode("audit-signing-key-0123456789abcdef-0123");

async function chainOf(
  kv: Deno.Kv,
  clock: FakeClock,
  n: number,
  every = 100,
): Promise<AuditEvent[]> {
  const audit = createAuditService({
    kv,
    clock,
    logger: memoryLogger(),
    signingKey: KEY,
    checkpointEvery: every,
  });
  const events: AuditEvent[] = [];
  for (let i = 0; i < n; i++) {
    clock.advance(1000);
    events.push(
      await audit.record({ type: "auth.login", outcome: "success", details: { n: i } }),
    );
  }
  await audit.checkpoint();
  return events;
}

function verify(kv: Deno.Kv, clock: FakeClock, key: Uint8Array | undefined = KEY) {
  return verifyAudit(kv, { signingKey: key, now: clock.now(), retentionDays: 365 });
}

Deno.test("audit verify accepts an untouched hash chain", async () => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  await chainOf(kv, clock, 12, 5);
  const result = await verify(kv, clock);
  assertEquals(result.problems, []);
  assert(result.ok);
  assertEquals(result.records, 12);
  assertEquals(result.chains, 1);
});

Deno.test("audit verify names an edited record", async () => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const events = await chainOf(kv, clock, 6);
  const target = events[3]!;
  await kv.set(auditKey(target.id), { ...target, outcome: "failure" });
  const result = await verify(kv, clock);
  assert(!result.ok);
  const edited = result.problems.find((p) => p.kind === "edited");
  assertEquals(edited?.id, target.id);
  assertEquals(edited?.seq, 3);
});

Deno.test("audit verify names a deleted record, in the middle and at the tail", async (t) => {
  await t.step("middle", async () => {
    using kv = await Deno.openKv(":memory:");
    const clock = new FakeClock();
    const events = await chainOf(kv, clock, 6);
    await kv.delete(auditKey(events[2]!.id));
    const result = await verify(kv, clock);
    const deleted = result.problems.find((p) => p.kind === "deleted");
    assertEquals(deleted?.seq, 2);
    assertMatch(deleted!.message, new RegExp(`between ${events[1]!.id} and ${events[3]!.id}`));
  });
  await t.step("tail, after the last checkpoint", async () => {
    using kv = await Deno.openKv(":memory:");
    const clock = new FakeClock();
    const events = await chainOf(kv, clock, 6);
    await kv.delete(auditKey(events[5]!.id));
    const result = await verify(kv, clock);
    assertEquals(result.problems.find((p) => p.kind === "deleted")?.seq, 5);
  });
});

Deno.test("audit verify names a chain whose every record was deleted", async () => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const events = await chainOf(kv, clock, 6);
  for (const event of events) await kv.delete(auditKey(event.id));
  const result = await verify(kv, clock);
  assert(!result.ok);
  const deleted = result.problems.find((p) => p.kind === "deleted");
  assertEquals(deleted?.chain, events[0]!.chain);
  assertMatch(deleted!.message, /no records left/);
});

Deno.test("audit verify names an unchained record written after the chain began", async () => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const events = await chainOf(kv, clock, 4);
  const { chain: _chain, seq: _seq, prev: _prev, hash: _hash, ...bare } = events[3]!;
  const planted = { ...bare, id: "planted-record-0001", at: clock.now().toISOString() };
  await kv.set(auditKey(planted.id), planted);
  const result = await verify(kv, clock);
  assert(!result.ok);
  assertEquals(result.problems.find((p) => p.kind === "unchained")?.id, planted.id);
});

Deno.test("audit verify names an inserted record", async (t) => {
  await t.step("spliced into a chain", async () => {
    using kv = await Deno.openKv(":memory:");
    const clock = new FakeClock();
    const events = await chainOf(kv, clock, 6);
    // A forged record taking seq 3's place with a correct self-hash but no link.
    const forged = { ...events[3]!, id: `${events[3]!.id.slice(0, -1)}z`, details: { n: 99 } };
    await kv.delete(auditKey(events[3]!.id));
    const { hash: _h, ...rest } = forged;
    const { auditRecordHash } = await import("../../../services/core/audit.ts");
    await kv.set(auditKey(forged.id), {
      ...forged,
      prev: "f".repeat(64),
      hash: auditRecordHash({ ...rest, prev: "f".repeat(64) }),
    });
    const result = await verify(kv, clock);
    assert(result.problems.some((p) => p.kind === "inserted" && p.id === forged.id));
  });
  await t.step("a whole forged chain without a signed checkpoint", async () => {
    using kv = await Deno.openKv(":memory:");
    const clock = new FakeClock();
    await chainOf(kv, clock, 3);
    // Written with another key: its checkpoints do not verify under the real one.
    const other = createAuditService({
      kv,
      clock,
      logger: memoryLogger(),
      signingKey: new TextEncoder().encode("x".repeat(40)),
    });
    const fake = await other.record({ type: "auth.login", outcome: "success" });
    const result = await verify(kv, clock);
    assert(result.problems.some((p) => p.kind === "checkpoint" && p.chain === fake.chain));
    assert(result.problems.some((p) => p.kind === "inserted" && p.chain === fake.chain));
  });
});

Deno.test("audit verify without a signing key warns that signatures went unchecked", async () => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  await chainOf(kv, clock, 2);
  const result = await verifyAudit(kv, {
    signingKey: undefined,
    now: clock.now(),
    retentionDays: 365,
  });
  assert(result.ok);
  assertMatch(result.warnings.join("\n"), /AUDIT_SIGNING_KEY/);
});
