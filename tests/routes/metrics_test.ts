import { login, promote, randomUser, signUp, tokenPair } from "../_helpers/accounts.ts";
import { assert, assertEquals, assertMatch, assertProblem } from "../_helpers/assert.ts";
import { png, zip } from "../_helpers/files.ts";
import { bearer, json, jsonInit } from "../_helpers/http.ts";
import { openWorld, type World } from "../_helpers/world.ts";
import type { VirusScanner } from "../../services/uploads/scanner.ts";

const TOKEN = "metrics-scrape-token-0123456789abcdef-0123";

/** The value of one sample, e.g. `bulwark_logins_total{outcome="success",reason="ok"}`; 0 if absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const all = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (all) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return 0;
}

async function scrape(w: World): Promise<string> {
  const res = await w.app.request("/metrics", { headers: bearer(TOKEN) });
  assertEquals(res.status, 200);
  return await res.text();
}

/** A scanner whose breaker reads "open" and which flags every file as malware. */
const SCANNER: VirusScanner = {
  scan: async (stream) => {
    await stream.cancel();
    return { clean: false, signature: "Test.Signature" };
  },
  breakerState: () => "open",
};

Deno.test("GET /metrics needs METRICS_TOKEN or an admin with audit:read", async (t) => {
  await using w = await openWorld({ env: { METRICS_TOKEN: TOKEN } });
  await t.step("anonymous is 401, a wrong token 401, a user 403", async () => {
    await assertProblem(await w.app.request("/metrics"), 401, "token_invalid");
    await assertProblem(
      await w.app.request("/metrics", { headers: bearer(`${TOKEN}x`) }),
      401,
      "token_invalid",
    );
    const user = await signUp(w.app);
    await assertProblem(
      await w.app.request("/metrics", { headers: bearer(user.access) }),
      403,
      "forbidden",
    );
  });
  await t.step("the scrape token and an admin token read Prometheus text", async () => {
    const res = await w.app.request("/metrics", { headers: bearer(TOKEN) });
    assertEquals(res.status, 200);
    assertMatch(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    assertMatch(await res.text(), /# TYPE bulwark_http_requests_total counter/);
    const admin = await signUp(w.app);
    const access = await promote(w, admin, "admin");
    assertEquals((await w.app.request("/metrics", { headers: bearer(access) })).status, 200);
  });
  await t.step("METRICS_TOKEN shorter than 32 bytes is refused at start-up", async () => {
    let failed = false;
    try {
      await openWorld({ env: { METRICS_TOKEN: "short" } });
    } catch (error) {
      failed = error instanceof Error && /METRICS_TOKEN/.test(error.message);
    }
    assert(failed);
  });
});

Deno.test("METRICS_ENABLED=false answers 404 and records nothing", async () => {
  await using w = await openWorld({ env: { METRICS_TOKEN: TOKEN, METRICS_ENABLED: "false" } });
  await assertProblem(
    await w.app.request("/metrics", { headers: bearer(TOKEN) }),
    404,
    "not_found",
  );
});

Deno.test("every metric family is present and moves on the event it counts", async (t) => {
  await using w = await openWorld({
    env: { METRICS_TOKEN: TOKEN, RATE_LIMIT_UPLOADS: "3/minute" },
    scanner: SCANNER,
  });
  const user = randomUser();

  await t.step("requests by route template, never the raw path", async () => {
    const before = await scrape(w);
    const owner = await signUp(w.app);
    const id = "AAAAAAAAAAAAAAAAAAAAAA";
    await w.app.request(`/uploads/${id}`, { headers: bearer(owner.access) });
    const after = await scrape(w);
    assertEquals(
      sample(after, "bulwark_http_requests_total", { route: "/uploads/:id", status: "4xx" }) -
        sample(before, "bulwark_http_requests_total", { route: "/uploads/:id", status: "4xx" }),
      1,
    );
    assert(!after.includes(id), "no raw id in any label");
    assert(
      sample(after, "bulwark_http_request_duration_seconds_count", { route: "/uploads/:id" }) >= 1,
    );
    await w.app.request(`/no/such/${id}`);
    assert(!(await scrape(w)).includes(id), "unknown paths do not become labels");
  });

  await t.step("registrations and logins by outcome and reason", async () => {
    const before = await scrape(w);
    await w.app.request("/auth/register", jsonInit("POST", user));
    await login(w.app, user);
    await login(w.app, { email: "nobody@example.com", password: "Wrong-Pass-99!" });
    const after = await scrape(w);
    assertEquals(
      sample(after, "bulwark_registrations_total") - sample(before, "bulwark_registrations_total"),
      1,
    );
    assertEquals(
      sample(after, "bulwark_logins_total", { outcome: "success" }) -
        sample(before, "bulwark_logins_total", { outcome: "success" }),
      1,
    );
    assertEquals(
      sample(after, "bulwark_logins_total", { outcome: "failure", reason: "unknown_email" }),
      1,
    );
  });

  await t.step("refreshes and refresh reuse", async () => {
    const pair = await tokenPair(await login(w.app, user));
    const first = await w.app.request(
      "/auth/refresh",
      jsonInit("POST", { refresh_token: pair.refresh }),
    );
    assertEquals(first.status, 200);
    await w.app.request("/auth/refresh", jsonInit("POST", { refresh_token: pair.refresh }));
    await w.services.ops.intrusion.settled();
    await w.services.ops.alerts.settled();
    const after = await scrape(w);
    assertEquals(sample(after, "bulwark_refreshes_total", { outcome: "success" }), 1);
    assertEquals(sample(after, "bulwark_refreshes_total", { outcome: "token_revoked" }), 1);
    assertEquals(sample(after, "bulwark_refresh_reuse_detected_total"), 1);
    assertEquals(sample(after, "bulwark_alerts_active"), 1, "refresh_reuse raised an alert");
  });

  await t.step("throttles and lockouts", async () => {
    const victim = randomUser();
    await w.app.request("/auth/register", jsonInit("POST", victim));
    const wrong = { email: victim.email, password: "Wrong-Pass-99!" };
    assertEquals((await login(w.app, wrong)).status, 401);
    assertEquals((await login(w.app, wrong)).status, 429);
    for (let i = 0; i < 4; i++) {
      w.clock.advance(60_000);
      await login(w.app, wrong);
    }
    const after = await scrape(w);
    assert(sample(after, "bulwark_login_throttles_total") >= 1);
    assertEquals(sample(after, "bulwark_lockouts_total"), 1);
    assert(
      sample(after, "bulwark_logins_total", { outcome: "refused", reason: "login_throttled" }) >= 1,
    );
  });

  await t.step("authorization failures", async () => {
    const probe = await signUp(w.app);
    await w.app.request("/admin/blocks", { headers: bearer(probe.access) });
    assertEquals(sample(await scrape(w), "bulwark_authz_failures_total", { code: "forbidden" }), 1);
  });

  await t.step("API key uses and refusals by reason", async () => {
    const owner = await signUp(w.app);
    const created = await json(
      await w.app.request(
        "/api-keys",
        jsonInit("POST", { name: "k", scopes: ["profile:read"] }, bearer(owner.access)),
      ),
    );
    assertEquals(
      (await w.app.request("/users/me", { headers: { "x-api-key": String(created.key) } })).status,
      200,
    );
    await w.app.request("/users/me", { headers: { "x-api-key": `bwk_${"A".repeat(43)}` } });
    const after = await scrape(w);
    assertEquals(sample(after, "bulwark_api_key_uses_total"), 1);
    assertEquals(sample(after, "bulwark_api_key_refusals_total", { reason: "token_invalid" }), 1);
  });

  await t.step("uploads by outcome, and the scanner's breaker state", async () => {
    const owner = await signUp(w.app);
    const send = async (bytes: Uint8Array, name: string) => {
      const body = new FormData();
      body.append("file", new File([bytes as Uint8Array<ArrayBuffer>], name));
      return await w.app.request("/uploads", {
        method: "POST",
        body,
        headers: bearer(owner.access),
      });
    };
    assertEquals((await send(png(), "a.png")).status, 422, "the test scanner flags everything");
    assertEquals((await send(png(), "a.pdf")).status, 415);
    assertEquals(
      (await send(await zip([{ name: "../evil.txt", data: "x" }]), "z.zip")).status,
      422,
    );
    const after = await scrape(w);
    assertEquals(sample(after, "bulwark_uploads_total", { outcome: "malware_detected" }), 1);
    assertEquals(sample(after, "bulwark_uploads_total", { outcome: "unsupported_media_type" }), 1);
    assertEquals(sample(after, "bulwark_uploads_total", { outcome: "archive_rejected" }), 1);
    assertEquals(sample(after, "bulwark_breaker_state", { breaker: "scanner" }), 2);
  });

  await t.step("rate-limit refusals by class", async () => {
    // RATE_LIMIT_UPLOADS is 3/minute and the step before spent them.
    const owner = await signUp(w.app);
    for (let i = 0; i < 4; i++) {
      const body = new FormData();
      body.append("file", new File([png() as Uint8Array<ArrayBuffer>], "a.png"));
      await w.app.request("/uploads", { method: "POST", body, headers: bearer(owner.access) });
    }
    assertEquals(sample(await scrape(w), "bulwark_rate_limited_total", { class: "uploads" }), 1);
  });

  await t.step("KV latency and conflicts", async () => {
    const before = sample(await scrape(w), "bulwark_kv_conflicts_total");
    const res = await w.deps.kv.atomic()
      .check({ key: ["metrics_test"], versionstamp: "00000000000000010000" })
      .set(["metrics_test"], 1)
      .commit();
    assert(!res.ok);
    const after = await scrape(w);
    assertEquals(sample(after, "bulwark_kv_conflicts_total") - before, 1);
    assert(sample(after, "bulwark_kv_operation_duration_seconds_count", { op: "get" }) > 0);
    assert(sample(after, "bulwark_kv_operation_duration_seconds_count", { op: "commit" }) > 0);
  });

  await t.step("build info, blocks and lockdown gauges", async () => {
    const text = await scrape(w);
    assertEquals(sample(text, "bulwark_build_info"), 1);
    assertEquals(sample(text, "bulwark_lockdown"), 0);
    await w.services.ops.blocks.add({
      ip: "192.0.2.1",
      minutes: 5,
      reason: "t",
      createdBy: "test",
    });
    await w.services.ops.blocks.setLockdown(true, "drill", "test");
    const after = await scrape(w);
    assertEquals(sample(after, "bulwark_blocks_active", { kind: "ip" }), 1);
    assertEquals(sample(after, "bulwark_lockdown"), 1);
  });
});
