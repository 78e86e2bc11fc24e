import { startHttpsServer } from "../../server/http_server.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { makeCertificate } from "../_helpers/tls.ts";
import { memoryLogger, openWorld } from "../_helpers/world.ts";

const HAS_TESTSSL = (() => {
  try {
    Deno.statSync("/usr/bin/testssl");
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
})();

interface TestsslFinding {
  id: string;
  severity: string;
  finding: string;
}

Deno.test({
  name:
    "testssl.sh finds nothing at MEDIUM or above on the HTTPS listener (protocols, ciphers, FS, vulnerabilities, HSTS)",
  ignore: !HAS_TESTSSL,
  async fn() {
    const dir = await Deno.makeTempDir();
    await using w = await openWorld();
    // What a real deployment serves: ECDSA P-256, 90 days, with revocation information.
    const { ca, ...identity } = await makeCertificate(dir, {
      days: 90,
      ocspUrl: "http://127.0.0.1:4002",
    });
    await Deno.writeTextFile(`${dir}/ca.pem`, ca);
    const server = await startHttpsServer({
      hostname: "127.0.0.1",
      port: 0,
      logger: memoryLogger(),
      identity,
      handler: (req, info) => w.app.fetch(req, info),
    });
    try {
      const report = `${dir}/testssl.json`;
      // testssl's exit code does not track its findings; the JSON report is the verdict.
      await new Deno.Command("testssl", {
        args: [
          "--quiet",
          "--color",
          "0",
          "-n",
          "none",
          "--warnings",
          "off",
          "--connect-timeout",
          "5",
          "--openssl-timeout",
          "5",
          "--add-ca",
          `${dir}/ca.pem`,
          "-p", // protocols
          "-P", // server preferences (cipher order)
          "-S", // certificate
          "-f", // forward secrecy
          "-U", // known vulnerabilities
          "-h", // headers (HSTS)
          "--jsonfile",
          report,
          `https://localhost:${server.addr.port}/health`,
        ],
        stdout: "null",
        stderr: "null",
        stdin: "null",
      }).output();
      const findings = JSON.parse(await Deno.readTextFile(report)) as TestsslFinding[];
      assert(findings.length > 20, `testssl reported only ${findings.length} entries`);
      const serious = findings.filter((f) => ["MEDIUM", "HIGH", "CRITICAL"].includes(f.severity));
      assertEquals(serious.map((f) => `${f.severity} ${f.id}: ${f.finding}`), []);
      const byId = (id: string) => findings.find((f) => f.id === id);
      assertEquals(byId("TLS1_3")?.finding, "offered with final");
      assertEquals(byId("TLS1_2")?.finding, "not offered");
      const hsts = findings.filter((f) => f.id.startsWith("HSTS"));
      assert(byId("HSTS_time")?.severity === "OK", JSON.stringify(hsts));
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
