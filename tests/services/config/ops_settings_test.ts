import { assert, assertEquals } from "../../_helpers/assert.ts";
import { ConfigError, loadConfig } from "../../../services/config/config.ts";
import { memoryIo } from "../../_helpers/world.ts";

const BASE = {
  APP_ENV: "production",
  JWT_ACCESS_SECRET: "a".repeat(40),
  JWT_REFRESH_SECRET: "r".repeat(40),
};

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env, { io: memoryIo() });
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

Deno.test("security-operations settings are validated at start-up", async (t) => {
  await t.step("an alert URL needs its signing secret, and https in production", () => {
    assert(
      problemsOf({ ...BASE, ALERT_WEBHOOK_URL: "https://hooks.example.com/x" })
        .some((p) => p.includes('"ALERT_WEBHOOK_SECRET" must be set')),
    );
    assert(
      problemsOf({
        ...BASE,
        ALERT_WEBHOOK_URL: "http://hooks.example.com/x",
        ALERT_WEBHOOK_SECRET: "s".repeat(40),
      }).some((p) => p.includes("must be https in production")),
    );
    assertEquals(
      problemsOf({
        ...BASE,
        ALERT_WEBHOOK_URL: "https://hooks.example.com/x",
        ALERT_WEBHOOK_SECRET: "s".repeat(40),
      }),
      [],
    );
  });
  await t.step("secrets shorter than 32 bytes are refused", () => {
    for (const name of ["METRICS_TOKEN", "ALERT_WEBHOOK_SECRET", "AUDIT_SIGNING_KEY"]) {
      assert(problemsOf({ ...BASE, [name]: "short" }).some((p) => p.includes(`"${name}"`)), name);
    }
  });
  await t.step("INTRUSION_RULES must be a JSON object of known fields", () => {
    for (
      const bad of ["[1]", "{", '{"x":{"threshold":0}}', '{"x":{"nope":1}}', '{"Bad Name":{}}']
    ) {
      assert(
        problemsOf({ ...BASE, INTRUSION_RULES: bad }).some((p) => p.includes("INTRUSION_RULES")),
        bad,
      );
    }
  });
  await t.step("AUDIT_RETENTION_DAYS defaults to 365", () => {
    assertEquals(loadConfig(BASE, { io: memoryIo() }).auditRetentionDays, 365);
  });
});
