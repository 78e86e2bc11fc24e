import { createAlerter, signAlert } from "../../../services/ops/alerts.ts";
import { createMetrics } from "../../../services/ops/metrics.ts";
import { startReceiver as receiverWith } from "../../_helpers/webhook.ts";
import { assert, assertEquals, assertMatch } from "../../_helpers/assert.ts";
import { FakeClock, memoryLogger } from "../../_helpers/world.ts";

const SECRET = "alert-webhook-secret-0123456789abcdef-01";

function startReceiver(failFirst = 0) {
  return receiverWith(SECRET, failFirst);
}

function alerter(url: string, kv: Deno.Kv, clock: FakeClock, logger = memoryLogger()) {
  const metrics = createMetrics({ version: "test" });
  const a = createAlerter({
    url,
    secret: new TextEncoder().encode(SECRET),
    kv,
    clock,
    logger,
    metrics,
    retryDelaysMs: [10, 20, 40],
    timeoutMs: 2000,
  });
  return { a, metrics, logger };
}

const INPUT = {
  severity: "critical" as const,
  type: "credential_stuffing",
  key: "203.0.113.9",
  summary: "stuffing",
  facts: { count: 10 },
  requestIds: ["req-1"],
};

Deno.test("alerts are delivered signed to a real receiver, with the runbook link", async () => {
  await using receiver = startReceiver();
  using kv = await Deno.openKv(":memory:");
  const { a, metrics } = alerter(receiver.url, kv, new FakeClock());
  a.raise(INPUT);
  await a.close();
  assertEquals(receiver.received.length, 1);
  const got = receiver.received[0]!;
  assert(got.verified, "the receiver verified the HMAC signature");
  assertEquals(got.body.type, "credential_stuffing");
  assertEquals(got.body.severity, "critical");
  assertEquals(got.body.request_ids, ["req-1"]);
  assertMatch(String(got.body.runbook), /credential-stuffing\.md$/);
  assertMatch(
    await metrics.render(),
    /bulwark_alerts_total\{type="credential_stuffing",outcome="sent"\} 1/,
  );
});

Deno.test("a forged or replayed signature does not verify", () => {
  const key = new TextEncoder().encode(SECRET);
  const header = signAlert(key, 1000, '{"a":1}');
  assert(header !== signAlert(key, 1001, '{"a":1}'), "the timestamp is signed");
  assert(header !== signAlert(key, 1000, '{"a":2}'), "the body is signed");
});

Deno.test("alerts are deduplicated per type and key per window, across instances", async () => {
  await using receiver = startReceiver();
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const one = alerter(receiver.url, kv, clock);
  const two = alerter(receiver.url, kv, clock);
  one.a.raise(INPUT);
  await one.a.settled();
  two.a.raise(INPUT);
  one.a.raise({ ...INPUT, key: "198.51.100.1" });
  await one.a.settled();
  await two.a.settled();
  assertEquals(receiver.received.length, 2);
  clock.advance(601_000);
  two.a.raise(INPUT);
  await one.a.close();
  await two.a.close();
  assertEquals(receiver.received.length, 3, "a new window alerts again");
  assertMatch(await two.metrics.render(), /outcome="deduplicated"\} 1/);
});

Deno.test("alert delivery retries with backoff, then counts and logs a failure", async (t) => {
  await t.step("a receiver failing twice gets the alert on the third try", async () => {
    await using receiver = startReceiver(2);
    using kv = await Deno.openKv(":memory:");
    const { a } = alerter(receiver.url, kv, new FakeClock());
    a.raise(INPUT);
    await a.close();
    assertEquals(receiver.calls(), 3);
    assertEquals(receiver.received.length, 1);
  });
  await t.step("a dead receiver: counted as failed and logged, never thrown", async () => {
    await using receiver = startReceiver(100);
    using kv = await Deno.openKv(":memory:");
    const { a, metrics, logger } = alerter(receiver.url, kv, new FakeClock());
    a.raise(INPUT);
    await a.close();
    assertEquals(receiver.calls(), 4, "one try and three retries");
    assertMatch(await metrics.render(), /outcome="failed"\} 1/);
    assert(logger.lines.some((l) => l.includes("alert delivery failed")));
  });
});
