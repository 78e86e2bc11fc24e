import { DatabaseSync } from "node:sqlite";
import { dastGate } from "../../scripts/security/dast.ts";
import {
  applyAllowlist,
  AUDIT_NOT_CHECKED,
  auditGate,
  checkPins,
  parseAuditReport,
  sastGate,
} from "../../scripts/security/gates.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { memoryLogger } from "../_helpers/world.ts";

const UNREACHABLE_OUTPUT = {
  code: 1,
  stdout: "",
  stderr:
    "error: error sending request for url (https://registry.npmjs.org/-/npm/v1/security/advisories/bulk): client error (Connect): invalid peer certificate: UnknownIssuer\n",
};

const HIGH_REPORT = `
╭ Prototype pollution in minimist
│   Severity: high
│   Package: minimist
│   Vulnerable: <1.2.6
│   Patched: >=1.2.6
│   Path: npm:minimist@1.2.5
│   Info: https://github.com/advisories/GHSA-xvch-5gv4-984h
╰
Found 1 vulnerability
`;

Deno.test("audit gate: an unreachable advisory service is NOT CHECKED, never a pass", async (t) => {
  await t.step("the error output of this build machine", async () => {
    const result = await auditGate([], "2026-12-01", () => Promise.resolve(UNREACHABLE_OUTPUT));
    assertEquals(result.status, "not-checked");
    assertEquals(result.details[0], AUDIT_NOT_CHECKED);
  });
  await t.step(
    "the real `deno audit` here: whatever it says, an error is never a pass",
    async () => {
      const result = await auditGate([], "2026-12-01");
      if (result.status === "pass") {
        assert(result.details.includes("no HIGH/CRITICAL advisory"), result.details.join("\n"));
      } else {
        assert(result.status === "not-checked" || result.status === "fail", result.status);
      }
    },
  );
});

Deno.test("audit gate: a HIGH advisory fails with package and advisory, unless allowlisted and unexpired", async () => {
  const findings = parseAuditReport(HIGH_REPORT);
  assertEquals(findings, [{
    title: "Prototype pollution in minimist",
    severity: "high",
    package: "minimist",
    info: "https://github.com/advisories/GHSA-xvch-5gv4-984h",
  }]);
  const failing = await auditGate(
    [],
    "2026-12-01",
    () => Promise.resolve({ code: 1, stdout: HIGH_REPORT, stderr: "" }),
  );
  assertEquals(failing.status, "fail");
  assert(
    failing.details[0]?.includes("minimist") && failing.details[0].includes("GHSA-xvch-5gv4-984h"),
  );
  const entry = {
    advisory: "GHSA-xvch-5gv4-984h",
    package: "minimist",
    reason: "only reached from a build script, never with user input",
    expires: "2027-01-31",
  };
  assertEquals(applyAllowlist(findings, [entry], "2026-12-01").failing, []);
  assertEquals(applyAllowlist(findings, [entry], "2027-02-01").failing.length, 1);
  assertEquals(
    applyAllowlist(findings, [{ ...entry, reason: " " }], "2026-12-01").failing.length,
    1,
  );
});

Deno.test("pins gate: ranges, other registries and missing integrity fail", () => {
  const lock = {
    specifiers: { "npm:hono@4.13.19": "4.13.19" },
    npm: { "hono@4.13.19": { integrity: "sha512-abc=" } },
  };
  assertEquals(checkPins({ imports: { hono: "npm:hono@4.13.19" } }, lock).status, "pass");
  assertEquals(checkPins({ imports: { hono: "npm:hono@^4.13.19" } }, lock).status, "fail");
  assertEquals(checkPins({ imports: { x: "jsr:@std/assert@1.0.0" } }, lock).status, "fail");
  assertEquals(checkPins({ imports: { zod: "npm:zod@4.6.7" } }, lock).status, "fail");
  assertEquals(
    checkPins({ imports: { hono: "npm:hono@4.13.19" } }, { ...lock, npm: { "hono@4.13.19": {} } })
      .status,
    "fail",
  );
});

Deno.test("SAST gate (drill): a planted eval and an unexplained suppression fail; a reasoned one passes", async (t) => {
  const dir = new URL("../../services/", import.meta.url).pathname;
  const file = `${dir}_planted_${crypto.randomUUID().slice(0, 8)}.ts`;
  const relative = file.slice(file.indexOf("/services/") + 1);
  try {
    await t.step("eval of request data", async () => {
      await Deno.writeTextFile(
        file,
        "export function run(input: string): unknown {\n  return eval(input);\n}\n",
      );
      const result = await sastGate([relative]);
      assertEquals(result.status, "fail");
      assert(result.details.some((d) => d.includes("no-eval")), result.details.join("\n"));
    });
    await t.step("new Function and Math.random (security plugin)", async () => {
      await Deno.writeTextFile(
        file,
        "export function run(input: string): unknown {\n  return new Function(input)(Math.random());\n}\n",
      );
      const result = await sastGate([relative]);
      assertEquals(result.status, "fail");
      assert(result.details.some((d) => d.includes("bulwark-security/no-dynamic-code")));
      assert(result.details.some((d) => d.includes("bulwark-security/no-math-random")));
    });
    await t.step("a suppression without a reason fails, with a reason passes", async () => {
      const body =
        "export function run(input: string): unknown {\n  IGNORE\n  return eval(input);\n}\n";
      await Deno.writeTextFile(file, body.replace("IGNORE", "// deno-lint-ignore no-eval"));
      assertEquals((await sastGate([relative])).status, "fail");
      await Deno.writeTextFile(
        file,
        body.replace(
          "IGNORE",
          "// deno-lint-ignore no-eval -- drill: input is a constant in tests",
        ),
      );
      assertEquals((await sastGate([relative])).status, "pass");
    });
  } finally {
    await Deno.remove(file).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }
});

const HAS_SQLMAP = (() => {
  try {
    Deno.statSync("/usr/bin/sqlmap");
    Deno.statSync("/usr/bin/wapiti");
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
})();

Deno.test({
  name: "DAST gate (drill): a planted SQL-injectable route fails the run",
  ignore: !HAS_SQLMAP,
  async fn() {
    const db = new DatabaseSync(":memory:");
    db.exec("CREATE TABLE people (name TEXT); INSERT INTO people VALUES ('alice'), ('bob');");
    try {
      const logger = memoryLogger();
      const result = await dastGate({
        logger,
        targets: [{
          name: "planted search",
          method: "GET",
          path: "/planted/search",
          query: { q: "alice" },
        }],
        extend: (app) =>
          app.get("/planted/search", (c) => {
            // The planted flaw: user input concatenated into SQL.
            const rows = db.prepare(`SELECT name FROM people WHERE name = '${c.req.query("q")}'`)
              .all();
            return c.json({ items: rows });
          }),
      });
      assertEquals(result.status, "fail", result.details.join("\n"));
      assert(
        result.details.some((d) => d.startsWith("planted search: injectable")),
        result.details.join("\n"),
      );
    } finally {
      db.close();
    }
  },
});
