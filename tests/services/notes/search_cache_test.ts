import { createNoteSearchCache, type SearchEntry } from "../../../services/notes/search_cache.ts";
import { assertEquals } from "../../_helpers/assert.ts";

/** `count` entries of `chars` characters each. */
function entries(count: number, chars: number): SearchEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    sortKey: String(i).padStart(4, "0"),
    id: `n${i}`,
    text: "x".repeat(chars),
  }));
}

/** A loader that counts its calls. */
function loader(list: SearchEntry[]): { load: () => Promise<SearchEntry[]>; calls: () => number } {
  let calls = 0;
  return {
    load: () => {
      calls++;
      return Promise.resolve(list);
    },
    calls: () => calls,
  };
}

Deno.test("createNoteSearchCache() keeps at most maxChars of text, least recently used out first", async (t) => {
  await t.step("filling past the bound evicts the least recently used owners", async () => {
    const cache = createNoteSearchCache({ maxChars: 1000 });
    const owners = Array.from(
      { length: 5 },
      (_, i) => ({ id: `u${i}`, ...loader(entries(4, 100)) }),
    );
    // 400 characters each: two owners fit, the third pushes the oldest out.
    for (const o of owners.slice(0, 2)) await cache.entries(o.id, "v1", o.load);
    await cache.entries("u0", "v1", owners[0]!.load); // u0 becomes the most recent
    await cache.entries("u2", "v1", owners[2]!.load);
    // The survivors first (hits change no order among them), the evicted one last.
    const calls = (i: number) => owners[i]!.calls();
    const before = [calls(0), calls(1), calls(2)];
    for (const i of [0, 2, 1]) await cache.entries(`u${i}`, "v1", owners[i]!.load);
    assertEquals(
      [calls(0) - before[0]!, calls(1) - before[1]!, calls(2) - before[2]!],
      [0, 1, 0],
      "u1 (least recently used) was evicted; u0 and u2 were held",
    );
  });

  await t.step("the held text never exceeds the bound, over many owners", async () => {
    const cache = createNoteSearchCache({ maxChars: 1000 });
    const hits = new Map<string, ReturnType<typeof loader>>();
    for (let i = 0; i < 200; i++) {
      const l = loader(entries(3, 100));
      hits.set(`u${i}`, l);
      await cache.entries(`u${i}`, "v1", l.load);
    }
    // 300 characters per owner: only the last three can still be cached.
    let cached = 0;
    for (const [id, l] of hits) {
      const calls = l.calls();
      await cache.entries(id, "v1", l.load);
      if (l.calls() === calls) cached++;
    }
    assertEquals(cached <= 3, true, `${cached} owners still cached`);
  });

  await t.step("one owner's text over the bound is served but never held", async () => {
    const cache = createNoteSearchCache({ maxChars: 1000 });
    const big = loader(entries(20, 100));
    assertEquals((await cache.entries("big", "v1", big.load)).length, 20);
    await cache.entries("big", "v1", big.load);
    assertEquals(big.calls(), 2);
  });

  await t.step("a new version is reloaded; an unknown version (null) is never cached", async () => {
    const cache = createNoteSearchCache();
    const l = loader(entries(1, 10));
    await cache.entries("u", "v1", l.load);
    await cache.entries("u", "v2", l.load);
    await cache.entries("u", null, l.load);
    await cache.entries("u", null, l.load);
    assertEquals(l.calls(), 4);
  });
});
