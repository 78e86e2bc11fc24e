import { assert, assertEquals } from "../_helpers/assert.ts";
import { bearer } from "../_helpers/http.ts";
import { openWorld } from "../_helpers/world.ts";

const METRICS_TOKEN = "m".repeat(40);

/** The label sets of `bulwark_http_requests_total` in a Prometheus text page. */
function requestSeries(text: string): string[] {
  return text.split("\n").filter((line) => line.startsWith("bulwark_http_requests_total{"))
    .map((line) => line.slice(0, line.lastIndexOf("}") + 1));
}

Deno.test("metrics label request series by route template, so probed paths add one series", async () => {
  await using w = await openWorld({ env: { METRICS_TOKEN } });
  const scrape = async () =>
    await (await w.app.request("/metrics", { headers: bearer(METRICS_TOKEN) })).text();
  const probe = async (path: string) => await (await w.app.request(path)).body?.cancel();
  await probe("/no-such-path-0");
  await probe("/uploads/AAAAAAAAAAAAAAAAAAAAAA");
  const before = requestSeries(await scrape());
  for (let i = 1; i <= 200; i++) {
    await probe(`/no-such-path-${i}/${crypto.randomUUID()}`);
    await probe(`/uploads/${crypto.randomUUID().replaceAll("-", "")}`);
  }
  const text = await scrape();
  const after = requestSeries(text);
  // The scrape itself may add its own /metrics series; nothing else may appear.
  assertEquals(
    after.filter((s) => !s.includes('route="/metrics"')).sort(),
    before.filter((s) => !s.includes('route="/metrics"')).sort(),
  );
  assert(!text.includes("no-such-path"), "a raw path became a label");
  assert(after.some((s) => s.includes('route="unmatched"')));
  assert(after.some((s) => s.includes('route="/uploads/:id"')));
});
