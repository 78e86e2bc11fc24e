import fc from "fast-check";
import { ValidationError } from "../../../services/core/errors.ts";
import {
  compareKeys,
  decodeCursor,
  encodeCursor,
  scanPage,
} from "../../../services/core/pagination.ts";
import { assertEquals, assertRejects, assertThrows } from "../../_helpers/assert.ts";

Deno.test("compareKeys() orders keys exactly as Deno KV does", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.string({ unit: "binary", maxLength: 6 }), { minLength: 2, maxLength: 20 }),
      async (parts) => {
        using kv = await Deno.openKv(":memory:");
        for (const p of parts) await kv.set(["k", p], 1);
        const stored: Deno.KvKey[] = [];
        for await (const e of kv.list({ prefix: ["k"] })) stored.push(e.key);
        assertEquals([...stored].sort(compareKeys), stored);
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("cursors round-trip and refuse anything else with 422", async (t) => {
  await t.step("round trip", () => {
    assertEquals(decodeCursor(encodeCursor(["a", "ü €"]), 2), ["a", "ü €"]);
  });
  await t.step("garbage, wrong shapes and oversize input are ValidationError", () => {
    for (
      const bad of [
        "!!",
        "e30",
        encodeCursor(["a"]),
        encodeCursor(["a", "b", "c"]),
        btoa("[1,2]"),
        btoa("not json"),
        "A".repeat(2000),
      ]
    ) {
      assertThrows(() => decodeCursor(bad, 2), ValidationError);
    }
  });
});

Deno.test("scanPage() walks a range once and keeps forged cursors inside the prefix", async (t) => {
  using kv = await Deno.openKv(":memory:");
  for (let i = 0; i < 25; i++) {
    await kv.set(["items", "alice", String(i).padStart(3, "0")], i);
    await kv.set(["items", "bob", String(i).padStart(3, "0")], 100 + i);
  }
  const page = (cursor?: string, reverse = false) =>
    scanPage<number, number>(kv, {
      prefix: ["items", "alice"],
      tailLength: 1,
      reverse,
      cursor,
      limit: 10,
      resolve: (entries) => Promise.resolve(entries.map((e) => e.value)),
    });
  for (const reverse of [false, true]) {
    await t.step(`every item once, ${reverse ? "newest" : "oldest"} first`, async () => {
      const seen: number[] = [];
      let cursor: string | undefined;
      do {
        const p = await page(cursor, reverse);
        seen.push(...p.items);
        cursor = p.next_cursor ?? undefined;
      } while (cursor !== undefined);
      const all = Array.from({ length: 25 }, (_, i) => i);
      assertEquals(seen, reverse ? all.reverse() : all);
    });
  }
  await t.step("a cursor naming another prefix's position stays within alice's items", async () => {
    for (
      const forged of [encodeCursor(["\u0000"]), encodeCursor(["zzz"]), encodeCursor(["../bob"])]
    ) {
      for (const reverse of [false, true]) {
        const p = await page(forged, reverse);
        for (const item of p.items) assertEquals(item < 100, true);
      }
    }
  });
  await t.step("a malformed cursor is refused", async () => {
    await assertRejects(() => page("%%%"), ValidationError);
  });
});
