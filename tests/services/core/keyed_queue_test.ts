import { createKeyedQueue } from "../../../services/core/keyed_queue.ts";
import { assertEquals, assertRejects } from "../../_helpers/assert.ts";

Deno.test("createKeyedQueue() holds only keys with work pending", async (t) => {
  await t.step(
    "a key is forgotten once its last task settles, whatever the key count",
    async () => {
      const queue = createKeyedQueue();
      await Promise.all(
        Array.from({ length: 1000 }, (_, i) => queue.run(`k${i}`, () => Promise.resolve(i))),
      );
      // The bookkeeping runs one microtask after each task's own settlement.
      await Promise.resolve();
      assertEquals(queue.size(), 0);
    },
  );

  await t.step("while tasks run, one entry per key, however many tasks it queued", async () => {
    const queue = createKeyedQueue();
    const { promise: gate, resolve } = Promise.withResolvers<void>();
    const order: string[] = [];
    const runs = [
      queue.run("a", async () => {
        await gate;
        order.push("a1");
      }),
      queue.run("a", () => Promise.resolve(void order.push("a2"))),
      queue.run("b", () => Promise.resolve(void order.push("b1"))),
    ];
    assertEquals(queue.size(), 2);
    resolve();
    await Promise.all(runs);
    await Promise.resolve();
    assertEquals(order, ["b1", "a1", "a2"], "per key in order; other keys run freely");
    assertEquals(queue.size(), 0);
  });

  await t.step("a failed task frees its key too", async () => {
    const queue = createKeyedQueue();
    await assertRejects(() => queue.run("x", () => Promise.reject(new Error("boom"))), Error);
    await Promise.resolve();
    assertEquals(queue.size(), 0);
  });
});
