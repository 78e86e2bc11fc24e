import { startHttpsServer } from "../../server/http_server.ts";
import { prepareTls } from "../../server/tls_setup.ts";
import { acmeCertificateKey } from "../../services/core/kv_keys.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { freePort } from "../_helpers/net.ts";
import { hasPebble, type Pebble, startPebble } from "../_helpers/pebble.ts";
import { servedFingerprint } from "../_helpers/tls.ts";
import { FakeClock, openWorld, type World } from "../_helpers/world.ts";

const skip = !hasPebble();
if (skip) {
  Deno.test({
    name: "ACME tests need Debian `pebble` (.ci/run installs it)",
    ignore: true,
    fn() {},
  });
}

function acmeEnv(pebble: Pebble, redirectPort: number): Record<string, string> {
  return {
    ACME_DIRECTORY_URL: pebble.directoryUrl,
    ACME_EMAIL: "ops@example.test",
    ACME_DOMAINS: "localhost",
    ACME_CA_FILE: pebble.caFile,
    HTTP_REDIRECT_PORT: String(redirectPort),
  };
}

async function serve(w: World, redirectPort: number) {
  const prepared = await prepareTls({ ...w.deps, tls: w.services.tls });
  if (prepared === undefined) throw new Error("TLS was not configured");
  const server = await startHttpsServer({
    hostname: "127.0.0.1",
    port: 0,
    logger: w.logger,
    identity: prepared.identity,
    minVersion: prepared.minVersion,
    redirect: {
      port: redirectPort,
      origin: "https://localhost",
      ...(prepared.acmeChallenge === undefined ? {} : { acmeChallenge: prepared.acmeChallenge }),
    },
    handler: (req, info) => w.app.fetch(req, info),
  });
  return { prepared, server, automation: prepared.start(server) };
}

Deno.test({
  name: "ACME against Pebble: placeholder, issuance over HTTP-01, serving, restart, renewal",
  ignore: skip,
  async fn(t) {
    const redirectPort = freePort();
    await using pebble = await startPebble({ httpPort: redirectPort });
    const kv = await Deno.openKv(":memory:");
    const clock = new FakeClock(new Date());
    try {
      await using w = await openWorld({ kv, clock, env: acmeEnv(pebble, redirectPort) });
      const { prepared, server, automation } = await serve(w, redirectPort);
      try {
        await t.step(
          "until the first certificate, a self-signed placeholder is served and logged",
          async () => {
            const status = w.services.tls.certificateStatus();
            assertEquals(status?.source, "self-signed");
            assertEquals(await servedFingerprint(server.addr.port), status?.fingerprint256);
            assert(
              w.logger.lines.some((l) => l.includes("self-signed certificate until the ACME")),
            );
          },
        );
        await t.step(
          "the first order completes HTTP-01 and the issued certificate is served",
          async () => {
            await automation.firstOrder;
            const status = w.services.tls.certificateStatus();
            assertEquals(status?.source, "acme");
            assert(status?.issuer.includes("Pebble Intermediate"), status?.issuer);
            assertEquals(await servedFingerprint(server.addr.port), status?.fingerprint256);
            // 90-day certificate: about 90 days left.
            assert(Math.abs((status?.secondsToExpiry ?? 0) - 90 * 86_400) < 3600);
            const client = Deno.createHttpClient({ caCerts: [await pebble.issuingRoot()] });
            try {
              const res = await fetch(`https://localhost:${server.addr.port}/health`, { client });
              assertEquals(res.status, 200);
              await res.body?.cancel();
            } finally {
              client.close();
            }
            assert((await kv.get(acmeCertificateKey("localhost"))).value !== null);
          },
        );
        const issued = w.services.tls.certificateStatus()?.fingerprint256;
        await t.step("a check before two thirds of the lifetime orders nothing", async () => {
          clock.advance(59 * 86_400_000);
          await prepared.checkNow();
          assertEquals(w.services.tls.certificateStatus()?.fingerprint256, issued);
        });
        await t.step(
          "with a third of the lifetime left, a new certificate is ordered and swapped in",
          async () => {
            clock.advance(2 * 86_400_000);
            await prepared.checkNow();
            const renewed = w.services.tls.certificateStatus();
            assertEquals(renewed?.source, "acme");
            assert(renewed?.fingerprint256 !== issued, "the certificate was not renewed");
            assertEquals(await servedFingerprint(server.addr.port), renewed?.fingerprint256);
          },
        );
      } finally {
        automation[Symbol.dispose]();
        await server.shutdown();
      }
      await t.step(
        "a restart on the same store serves the stored certificate without ordering",
        async () => {
          await using again = await openWorld({ kv, clock, env: acmeEnv(pebble, redirectPort) });
          const prepared2 = await prepareTls({ ...again.deps, tls: again.services.tls });
          assertEquals(again.services.tls.certificateStatus()?.source, "acme");
          assertEquals(
            prepared2?.identity.cert,
            (await kv.get<{ cert: string }>(acmeCertificateKey("localhost"))).value?.cert,
          );
          assert(!again.logger.lines.some((l) => l.includes("acme order started")));
        },
      );
    } finally {
      kv.close();
    }
  },
});

Deno.test({
  name:
    "ACME against Pebble: a failed HTTP-01 challenge is logged clearly and the placeholder stays",
  ignore: skip,
  async fn() {
    // Pebble validates on a port where Bulwark does not listen.
    const deadPort = freePort();
    await using pebble = await startPebble({ httpPort: deadPort });
    const ourPort = freePort();
    await using w = await openWorld({
      clock: new FakeClock(new Date()),
      env: acmeEnv(pebble, ourPort),
    });
    const { server, automation } = await serve(w, ourPort);
    try {
      await automation.firstOrder;
      const failure = w.logger.lines.find((l) => l.includes("acme order failed"));
      assert(failure !== undefined, "no failure logged");
      const fields = JSON.parse(failure);
      assertEquals(fields.level, "error");
      // The CA's own reason, e.g. "connection refused" while fetching the token.
      assert(
        /acme order failed: .*(connection|refused|unauthorized|invalid)/i.test(fields.problem),
        fields.problem,
      );
      assertEquals(w.services.tls.certificateStatus()?.source, "self-signed");
    } finally {
      automation[Symbol.dispose]();
      await server.shutdown();
    }
  },
});
