import { signUp } from "../../_helpers/accounts.ts";
import { assert, assertEquals, assertProblem, assertThrows } from "../../_helpers/assert.ts";
import { bearer, peer } from "../../_helpers/http.ts";
import { auditEvents, openWorld, type World } from "../../_helpers/world.ts";
import {
  DEFAULT_RULES,
  type IntrusionRule,
  resolveRules,
} from "../../../services/ops/intrusion.ts";

/** Records `n` audit events the rule counts, all with the same key. */
async function feed(w: World, rule: IntrusionRule, n: number, userId: string, ip: string) {
  for (let i = 0; i < n; i++) {
    await w.services.audit.record({
      type: rule.event,
      outcome: rule.outcome ?? "failure",
      userId,
      meta: { ip, userAgent: "t", requestId: `req-${i}` },
      details: { ...rule.where, key_id: "key-1" },
    });
  }
  await w.services.ops.intrusion.settled();
}

async function detections(w: World, rule: string) {
  return (await auditEvents(w.kv, "ops.intrusion_detected")).filter((e) => e.details.rule === rule);
}

for (const rule of DEFAULT_RULES) {
  Deno.test(`intrusion rule ${rule.name} triggers at its threshold and expires with its window`, async (t) => {
    await using w = await openWorld();
    const victim = await signUp(w.app);
    const ip = "203.0.113.50";
    await t.step("one event short of the threshold does nothing", async () => {
      await feed(w, rule, rule.threshold - 1, victim.id, ip);
      assertEquals(await detections(w, rule.name), []);
    });
    await t.step(
      "the threshold acts once: audited, alerted, blocked where the rule says",
      async () => {
        await feed(w, rule, 1, victim.id, ip);
        const found = await detections(w, rule.name);
        assertEquals(found.length, 1);
        assertEquals(found[0]!.details.count, rule.threshold);
        await feed(w, rule, 1, victim.id, ip);
        assertEquals((await detections(w, rule.name)).length, 1, "no second action in the window");
        const blocks = await w.services.ops.blocks.list();
        const blocking = rule.actions.includes("block") && rule.key !== "global" &&
          rule.key !== "api_key";
        assertEquals(blocks.length, blocking ? 1 : 0);
        if (blocking && rule.key === "ip") {
          await assertProblem(await w.app.request("/health", {}, peer(ip)), 403, "ip_blocked");
          assertEquals((await w.app.request("/health", {}, peer("198.51.100.1"))).status, 200);
        }
        if (blocking && rule.key === "user") {
          await assertProblem(
            await w.app.request("/users/me", { headers: bearer(victim.access) }),
            423,
            "account_locked",
          );
        }
      },
    );
    await t.step(
      "after the window and the block, the caller is back and counting restarts",
      async () => {
        w.clock.advance(Math.max(rule.windowSeconds, (rule.blockMinutes ?? 0) * 60) * 1000 + 1000);
        assertEquals(await w.services.ops.blocks.list(), []);
        if (rule.key === "ip") {
          assertEquals((await w.app.request("/health", {}, peer(ip))).status, 200);
        }
        await feed(w, rule, rule.threshold - 1, victim.id, ip);
        assertEquals((await detections(w, rule.name)).length, 1);
      },
    );
  });
}

Deno.test("intrusion rules are overridable by INTRUSION_RULES", async (t) => {
  await t.step("a default can be retuned or turned off, a new rule added", () => {
    const rules = resolveRules({
      login_failures_by_ip: { threshold: 3, actions: ["alert"] },
      enumeration: { enabled: false },
      password_reset_burst: { event: "password.reset_requested", key: "ip", threshold: 5 },
    });
    const byName = new Map(rules.map((r) => [r.name, r]));
    assertEquals(byName.get("login_failures_by_ip")?.threshold, 3);
    assertEquals(byName.get("login_failures_by_ip")?.actions, ["alert"]);
    assert(!byName.has("enumeration"));
    assertEquals(byName.get("password_reset_burst")?.key, "ip");
  });
  await t.step("an incomplete new rule is refused", () => {
    assertThrows(() => resolveRules({ nope: { threshold: 1 } }), TypeError);
  });
  await t.step("the setting reaches the runtime; malformed JSON stops start-up", async () => {
    await using w = await openWorld({
      env: { INTRUSION_RULES: '{"login_failures_by_ip":{"threshold":2}}' },
    });
    const rule = w.services.ops.intrusion.rules.find((r) => r.name === "login_failures_by_ip")!;
    assertEquals(rule.threshold, 2);
    let refused = false;
    try {
      await openWorld({ env: { INTRUSION_RULES: "{not json" } });
    } catch (error) {
      refused = error instanceof Error && /INTRUSION_RULES/.test(error.message);
    }
    assert(refused);
  });
  await t.step("INTRUSION_DETECTION=false runs no rule", async () => {
    await using w = await openWorld({ env: { INTRUSION_DETECTION: "false" } });
    assertEquals(w.services.ops.intrusion.rules.length, 0);
  });
});
