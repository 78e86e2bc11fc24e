import { createRevocationFeed, type Revoked } from "../../../services/core/revocation_feed.ts";
import { assertEquals } from "../../_helpers/assert.ts";
import { FakeClock, memoryLogger } from "../../_helpers/world.ts";

/** Appends one entry revoking `jti:<id>` in its own commit. */
async function revoke(kv: Deno.Kv, feed: ReturnType<typeof createRevocationFeed>, id: string) {
  const res = await feed.append(kv.atomic(), [{ kind: "jti", id }]).commit();
  assertEquals(res.ok, true);
}

Deno.test("the revocation feed remembers a bounded number of applied entries", async (t) => {
  await t.step(
    "never more than maxSeen ids after a sync; every entry still applied once",
    async () => {
      await using kv = await Deno.openKv(":memory:");
      const clock = new FakeClock();
      const feed = createRevocationFeed({ kv, clock, logger: memoryLogger(), maxSeen: 3 });
      const applied: Revoked[] = [];
      feed.subscribe((entry) => applied.push(entry));
      for (let i = 0; i < 10; i++) {
        clock.advance(10);
        await revoke(kv, feed, `j${i}`);
      }
      await feed.sync();
      assertEquals(feed.seenCount(), 3);
      assertEquals(applied.map((e) => e.id), Array.from({ length: 10 }, (_, i) => `j${i}`));
    },
  );

  await t.step("ids older than twice the look-back window are forgotten", async () => {
    await using kv = await Deno.openKv(":memory:");
    const clock = new FakeClock();
    const feed = createRevocationFeed({ kv, clock, logger: memoryLogger() });
    const applied: string[] = [];
    feed.subscribe((entry) => applied.push(entry.id));
    await revoke(kv, feed, "old-1");
    clock.advance(1);
    await revoke(kv, feed, "old-2");
    await feed.sync();
    assertEquals(feed.seenCount(), 2);
    // Three minutes on: both lie beyond the 60 s look-back, doubled.
    clock.advance(3 * 60_000);
    await revoke(kv, feed, "new");
    await feed.sync();
    assertEquals(feed.seenCount(), 1);
    assertEquals(applied, ["old-1", "old-2", "new"], "nothing applied twice");
  });

  await t.step("a sync without a new head adds nothing", async () => {
    await using kv = await Deno.openKv(":memory:");
    const feed = createRevocationFeed({ kv, clock: new FakeClock(), logger: memoryLogger() });
    await revoke(kv, feed, "only");
    await feed.sync();
    await feed.sync();
    assertEquals(feed.seenCount(), 1);
  });
});
