import { createMetrics, type RequestSample } from "../../../services/ops/metrics.ts";
import { assertMatch } from "../../_helpers/assert.ts";

const SAMPLE: RequestSample = {
  method: "GET",
  route: "/users/me",
  status: 200,
  seconds: 0.002,
  code: null,
  rateClass: "general",
  credential: "bearer",
  apiKeyError: null,
};

Deno.test("metrics reported before prom-client has loaded are counted, in order", async () => {
  const metrics = createMetrics({ version: "test" });
  // Synchronously after creation: the import of prom-client cannot have settled yet.
  metrics.request(SAMPLE);
  metrics.request({ ...SAMPLE, status: 404, route: "unmatched" });
  metrics.kvConflict();
  metrics.gauge("lockdown", () => [[{}, 1]]);
  const text = await metrics.render();
  assertMatch(
    text,
    /bulwark_http_requests_total\{method="GET",route="\/users\/me",status="2xx"\} 1/,
  );
  assertMatch(text, /bulwark_http_requests_total\{method="GET",route="unmatched",status="4xx"\} 1/);
  assertMatch(text, /bulwark_kv_conflicts_total 1/);
  assertMatch(text, /bulwark_lockdown 1/);
  // And after it has loaded, reports go straight through.
  metrics.request(SAMPLE);
  assertMatch(
    await metrics.render(),
    /bulwark_http_requests_total\{method="GET",route="\/users\/me",status="2xx"\} 2/,
  );
});
