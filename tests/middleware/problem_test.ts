/** The error path of every route: problem+json from `middleware/problem.ts`, body limit, validation. */
import { z } from "zod";
import { validate } from "../../middleware/validate.ts";
import { assert, assertEquals, assertProblem, assertSecurityHeaders } from "../_helpers/assert.ts";
import { openWorld, type World } from "../_helpers/world.ts";

/** Adds test-only routes that exercise validation and failures to `app`. */
function withProbes(app: World["app"]): World["app"] {
  const Body = z.strictObject({ name: z.string().min(1).max(10) });
  app.post("/probe/echo", validate("json", Body), (c) => c.json(c.req.valid("json")));
  app.get("/probe/boom", () => {
    throw new Error("secret internal detail at /srv/app/services/x.ts");
  });
  return app;
}

Deno.test("errors are problem+json with security headers and no internals", async (t) => {
  await using w = await openWorld();
  const app = withProbes(w.app);
  await t.step("404 for an unknown route", async () => {
    const res = await app.request("/nope/../../etc/passwd");
    await assertProblem(res, 404, "not_found");
    assertSecurityHeaders(res);
  });
  await t.step("413 for an oversized body with Content-Length", async () => {
    const res = await app.request("/probe/echo", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "x".repeat(70_000) }),
    });
    await assertProblem(res, 413, "payload_too_large");
    assertSecurityHeaders(res);
  });
  await t.step("413 for an oversized chunked body without Content-Length", async () => {
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(16 * 1024).fill(0x20));
        if (pulled > 1000) controller.close();
      },
    });
    const res = await app.request("/probe/echo", {
      method: "POST",
      headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
      body: stream,
    });
    await assertProblem(res, 413, "payload_too_large");
    assert(pulled < 10, `read ${pulled} chunks; must stop right after the limit`);
  });
  await t.step("422 with field errors, never the raw zod output", async () => {
    const res = await app.request("/probe/echo", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "", extra: "<script>" }),
    });
    const body = await assertProblem(res, 422, "validation_failed");
    const errors = body.errors as { path: string; message: string }[];
    assert(errors.some((e) => e.path === "name"));
    assert(errors.some((e) => e.message.includes("extra")), "unknown fields are rejected");
    assertSecurityHeaders(res);
  });
  await t.step("400 malformed_json", async () => {
    const res = await app.request("/probe/echo", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"name": "a",',
    });
    await assertProblem(res, 400, "malformed_json");
  });
  await t.step("415 for a non-JSON body on a JSON route", async () => {
    const res = await app.request("/probe/echo", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: '{"name":"a"}',
    });
    await assertProblem(res, 415, "unsupported_media_type");
  });
  await t.step("500 hides the error and logs it once with the request id", async () => {
    const res = await app.request("/probe/boom", { headers: { "x-request-id": "trace-500" } });
    const body = await assertProblem(res, 500, "internal");
    assertSecurityHeaders(res);
    const text = JSON.stringify(body);
    for (const leak of ["secret internal", "/srv/", "services/", "Error", "at "]) {
      assert(!text.includes(leak), `500 body leaks ${leak}`);
    }
    const logged = w.logger.lines.filter((l) => l.includes("unhandled error"));
    assertEquals(logged.length, 1);
    assert(logged[0]?.includes("trace-500"));
  });
  await t.step("the valid request passes", async () => {
    const res = await app.request("/probe/echo", {
      method: "POST",
      headers: { "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify({ name: "ok" }),
    });
    assertEquals(res.status, 200);
    assertEquals(await res.json(), { name: "ok" });
  });
});
