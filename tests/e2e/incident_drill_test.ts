/**
 * Incident drill (`deno task drill`): a credential-stuffing burst against a
 * running instance, replayed end to end as docs/runbooks/credential-stuffing.md
 * describes it — the alert reaches a real receiver (signature verified), the
 * rule blocks the source, the metrics move, and the runbook's commands
 * (run as child processes on the server's store) restore service.
 */
import { signUp } from "../_helpers/accounts.ts";
import { assert, assertEquals, assertMatch } from "../_helpers/assert.ts";
import { bearer, jsonInit } from "../_helpers/http.ts";
import { waitFor } from "../_helpers/wait.ts";
import { startReceiver } from "../_helpers/webhook.ts";
import { startTestServer } from "./_server.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const SECRET = "drill-webhook-secret-0123456789abcdef-012";
const METRICS = "drill-metrics-token-0123456789abcdef-0123";
const ATTACKER = "203.0.113.66";

function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
      return Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return 0;
}

Deno.test("incident drill: credential stuffing is alerted, blocked, measured and undone", async (t) => {
  await using receiver = startReceiver(SECRET);
  const dir = await Deno.makeTempDir({ prefix: "bulwark_drill_" });
  const env = {
    KV_PATH: `${dir}/bulwark.kv`,
    ALERT_WEBHOOK_URL: receiver.url,
    ALERT_WEBHOOK_SECRET: SECRET,
    METRICS_TOKEN: METRICS,
    AUDIT_SIGNING_KEY: "drill-audit-key-0123456789abcdef-0123456",
    // The drill plays several clients through one loopback socket.
    TRUST_PROXY: "1",
  };
  try {
    await using server = await startTestServer(env);
    const from = (ip: string) => ({ "x-forwarded-for": ip });
    const http = (path: string, init: RequestInit = {}, ip = "198.51.100.1") =>
      fetch(`${server.origin}${path}`, {
        ...init,
        headers: { ...from(ip), ...init.headers as Record<string, string> },
      });
    const scrape = async () => await (await http("/metrics", { headers: bearer(METRICS) })).text();
    const cli = async (...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", MAIN, ...args],
        env: {
          NO_COLOR: "1",
          APP_ENV: "test",
          LOG_LEVEL: "error",
          JWT_ACCESS_SECRET: "test-access-secret-0123456789abcdef0123456789",
          JWT_REFRESH_SECRET: "test-refresh-secret-0123456789abcdef012345678",
          BULWARK_OPERATOR: "oncall",
          ...env,
        },
        clearEnv: true,
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = (b: Uint8Array) => new TextDecoder().decode(b);
      return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
    };
    const victim = await signUp({ request: (p, i) => http(p, i) });
    const before = await scrape();

    await t.step("the burst: one address tries many accounts", async () => {
      for (let i = 0; i < 12; i++) {
        const res = await http(
          "/auth/login",
          jsonInit("POST", { email: `user${i}@victims.example`, password: "Winter2024!x" }),
          ATTACKER,
        );
        await res.body?.cancel();
      }
      await server.runtime.services.ops.intrusion.settled();
      await server.runtime.services.ops.alerts.settled();
    });

    await t.step("the rule blocked the source before any other work", async () => {
      const res = await http("/auth/login", jsonInit("POST", victim.user), ATTACKER);
      assertEquals(res.status, 403);
      assertEquals((await res.json()).code, "ip_blocked");
      assertEquals((await http("/health")).status, 200, "other clients are served");
    });

    await t.step("the alert reached the receiver, signed, with facts and a runbook", () => {
      const alert = receiver.received.find((r) => r.body.type === "credential_stuffing");
      assert(alert !== undefined, JSON.stringify(receiver.received.map((r) => r.body.type)));
      assert(alert.verified, "signature verified by the receiver");
      assert(alert.ageSeconds < 60, "fresh timestamp");
      assertEquals(alert.body.severity, "critical");
      assertEquals((alert.body.facts as Record<string, unknown>).ip, ATTACKER);
      assert((alert.body.request_ids as string[]).length > 0);
      assertMatch(String(alert.body.runbook), /credential-stuffing\.md$/);
    });

    await t.step("the metrics moved", async () => {
      const after = await scrape();
      const failed = { outcome: "failure", reason: "unknown_email" };
      assert(
        sample(after, "bulwark_logins_total", failed) -
            sample(before, "bulwark_logins_total", failed) >= 10,
      );
      assertEquals(
        sample(after, "bulwark_intrusion_rule_triggers_total", { rule: "credential_stuffing" }),
        1,
      );
      assertEquals(sample(after, "bulwark_blocks_active", { kind: "ip" }), 1);
      assertEquals(
        sample(after, "bulwark_alerts_total", { type: "credential_stuffing", outcome: "sent" }),
        1,
      );
      assertEquals(
        sample(after, "bulwark_http_requests_total", { route: "/auth/login", status: "4xx" }),
        13,
        "the burst, then the blocked attempts, under the route template",
      );
    });

    await t.step("the runbook's commands restore service", async () => {
      const list = await cli("blocks", "list");
      assertEquals(list.code, 0, list.stderr);
      const block = JSON.parse(list.stdout.trim().split("\n")[0]!) as { id: string; value: string };
      assertEquals(block.value, ATTACKER);
      const since = new Date(Date.now() - 3600_000).toISOString();
      const until = new Date(Date.now() + 60_000).toISOString();
      const evidence = await cli(
        "audit",
        "export",
        "--since",
        since,
        "--until",
        until,
        "--type",
        "ops.intrusion_detected",
      );
      assertMatch(evidence.stdout, /"rule":"credential_stuffing"/);
      const lift = await cli("blocks", "remove", block.id);
      assertEquals(lift.code, 0, lift.stderr);
      await waitFor("the source to be served again", async () => {
        const res = await http("/health", {}, ATTACKER);
        await res.body?.cancel();
        return res.status === 200;
      }, { timeoutMs: 8000, intervalMs: 200 });
      const verify = await cli("audit", "verify");
      assertEquals(verify.code, 0, verify.stdout + verify.stderr);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
