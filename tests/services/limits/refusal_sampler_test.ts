import { createRefusalSampler } from "../../../services/limits/refusal_sampler.ts";
import type { BucketId, RateLimit } from "../../../services/limits/rate_limiter.ts";
import { assertEquals } from "../../_helpers/assert.ts";
import { FakeClock } from "../../_helpers/world.ts";

const FIVE_PER_MINUTE: RateLimit = { limit: 5, windowMs: 60_000, burst: 5 };
const IP: BucketId = { name: "login_ip", key: "203.0.113.7" };

Deno.test("createRefusalSampler() audits one refusal per bucket per window", async (t) => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const sampler = createRefusalSampler({ kv, clock });

  await t.step("the first refusal is audited, the rest of the window is not", async () => {
    assertEquals(await sampler.shouldAudit(IP, FIVE_PER_MINUTE), true);
    assertEquals(await sampler.shouldAudit(IP, FIVE_PER_MINUTE), false);
    clock.advance(59_999);
    assertEquals(await sampler.shouldAudit(IP, FIVE_PER_MINUTE), false);
  });
  await t.step("other buckets are sampled separately", async () => {
    assertEquals(await sampler.shouldAudit({ ...IP, key: "198.51.100.1" }, FIVE_PER_MINUTE), true);
    assertEquals(await sampler.shouldAudit({ ...IP, name: "anon_ip" }, FIVE_PER_MINUTE), true);
  });
  await t.step("the next window is audited again, by the stored time not the TTL", async () => {
    clock.advance(1);
    assertEquals(await sampler.shouldAudit(IP, FIVE_PER_MINUTE), true);
    assertEquals(await sampler.shouldAudit(IP, FIVE_PER_MINUTE), false);
  });
  await t.step("of 20 concurrent refusals exactly one is audited", async () => {
    const id = { name: "login_ip", key: "192.0.2.55" };
    const votes = await Promise.all(
      Array.from({ length: 20 }, () => sampler.shouldAudit(id, FIVE_PER_MINUTE)),
    );
    assertEquals(votes.filter(Boolean).length, 1);
  });
  await t.step("long keys are bounded here too", async () => {
    assertEquals(
      await sampler.shouldAudit({ ...IP, key: "z".repeat(5_000) }, FIVE_PER_MINUTE),
      true,
    );
  });
});
