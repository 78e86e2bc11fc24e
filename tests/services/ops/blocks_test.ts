import { createAuditService } from "../../../services/core/audit.ts";
import { createLockoutService } from "../../../services/auth/lockout.ts";
import { createUserService } from "../../../services/identity/users.ts";
import { createRevocationFeed } from "../../../services/core/revocation_feed.ts";
import { createBlockService } from "../../../services/ops/blocks.ts";
import { createNoopMetrics } from "../../../services/ops/metrics.ts";
import { assert, assertEquals } from "../../_helpers/assert.ts";
import { FakeClock, memoryLogger } from "../../_helpers/world.ts";

function blockService(kv: Deno.Kv, clock: FakeClock, logger = memoryLogger()) {
  const audit = createAuditService({ kv, clock, logger });
  return createBlockService({
    kv,
    clock,
    audit,
    logger,
    metrics: createNoopMetrics(),
    users: createUserService({
      kv,
      clock,
      feed: createRevocationFeed({ kv, clock, logger }),
    }),
    lockout: createLockoutService({ kv, clock, audit }),
  });
}

Deno.test("the block view is read from memory and refreshed from the store after pollMs", async () => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const a = blockService(kv, clock);
  const b = blockService(kv, clock);
  assertEquals(await b.ipBlock("192.0.2.1"), null, "b loads its (empty) view");
  await a.add({ ip: "192.0.2.1", minutes: 5, reason: "t", createdBy: "test" });
  assert(await a.ipBlock("192.0.2.1") !== null, "the writer applies it at once");
  assertEquals(await b.ipBlock("192.0.2.1"), null, "b has not polled yet: no KV read per check");
  clock.advance(2000);
  await b.ipBlock("192.0.2.1"); // starts the background refresh
  await b.refresh();
  assert(await b.ipBlock("192.0.2.1") !== null);
});

Deno.test("a failed refresh keeps the last view in force and is logged (fail-safe)", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const logger = memoryLogger();
  const blocks = blockService(kv, clock, logger);
  await blocks.add({ ip: "192.0.2.9", minutes: 5, reason: "t", createdBy: "test" });
  await blocks.setLockdown(true, "drill", "test");
  await blocks.refresh();
  kv.close();
  clock.advance(2000);
  await blocks.refresh();
  assert(logger.lines.some((l) => l.includes("block view refresh failed")));
  assert(await blocks.ipBlock("192.0.2.9") !== null, "the block still applies");
  assertEquals((await blocks.lockdown())?.on, true, "lockdown still applies");
});
