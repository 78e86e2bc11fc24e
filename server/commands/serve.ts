import type { CliCommand } from "../cli.ts";
import {
  type HttpServer,
  startBoundedHttpServer,
  startHttpServer,
  startHttpsServer,
} from "../http_server.ts";
import { createRuntime } from "../runtime.ts";
import { type PreparedTls, prepareTls } from "../tls_setup.ts";
import { TlsIdentityError } from "../../services/tls/certificate.ts";
import { loadCommandConfig } from "./config.ts";

/** `bulwark serve` (the default): runs the HTTP service until SIGINT or SIGTERM. */
export const serveCommand: CliCommand = {
  name: "serve",
  summary: "Run the HTTP service (default)",
  async run({ env, io }) {
    const config = loadCommandConfig(env, io);
    if (config === null) return 1;
    await using runtime = await createRuntime(config);
    const { logger } = runtime.deps;
    if (config.generatedSecrets.length > 0) {
      logger.warn("development secrets generated; set them in the environment for production", {
        names: config.generatedSecrets,
        stored_in: config.appEnv === "development"
          ? `${config.dataDir}/dev-secrets.json`
          : "memory",
      });
    }
    let tls: PreparedTls | undefined;
    try {
      tls = await prepareTls({ ...runtime.deps, tls: runtime.services.tls });
    } catch (error) {
      if (!(error instanceof TlsIdentityError || error instanceof Deno.errors.NotFound)) {
        throw error;
      }
      io.err(`Configuration error:\n  - TLS certificate refused: ${error.message}`);
      return 1;
    }
    const handler: Deno.ServeHandler<Deno.NetAddr> = (req, info) => runtime.app.fetch(req, info);
    const common = {
      handler,
      hostname: config.host,
      port: config.port,
      logger,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
    };
    let server: HttpServer;
    let automation: Disposable | undefined;
    if (tls === undefined) {
      // Slow-loris bounds by default; Deno.serve only where a proxy in front bounds them.
      server = config.httpEngine === "node"
        ? await startBoundedHttpServer(common)
        : startHttpServer(common);
    } else {
      const https = await startHttpsServer({
        ...common,
        identity: tls.identity,
        minVersion: tls.minVersion,
        ...(config.httpRedirectPort === undefined ? {} : {
          redirect: {
            port: config.httpRedirectPort,
            origin: config.publicUrl,
            ...(tls.acmeChallenge === undefined ? {} : { acmeChallenge: tls.acmeChallenge }),
          },
        }),
      });
      automation = tls.start(https);
      server = https;
      if (Deno.build.os !== "windows") {
        Deno.addSignalListener("SIGHUP", () => void tls.reload("SIGHUP"));
      }
    }
    // Listen first, warm after: the dummy hash (timing-equal refusals) is made off
    // the event loop while /health already answers; a login that comes sooner
    // waits for it. The password dictionaries load on the first check that needs them.
    runtime.deps.hasher.dummyHash().catch((error: unknown) => {
      logger.error("bcrypt warm-up failed; the first login tries again", { error });
    });
    if (config.auditSigningKey === undefined) {
      logger.warn("AUDIT_SIGNING_KEY is not set: audit checkpoints are unsigned");
    }
    // Audit chain and certificate self-check: at start, then every 6 hours.
    const check = () =>
      runtime.selfCheck.run().catch((error: unknown) => {
        logger.error("self-check could not run", {
          error: error instanceof Error ? error.message : String(error),
        });
      });
    void check();
    const selfCheckTimer = setInterval(check, 6 * 3600_000);
    const { promise: stopped, resolve: stop } = Promise.withResolvers<string>();
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      if (Deno.build.os === "windows" && signal === "SIGTERM") continue;
      Deno.addSignalListener(signal, () => stop(signal));
    }
    logger.info("shutting down", { signal: await stopped });
    clearInterval(selfCheckTimer);
    automation?.[Symbol.dispose]();
    await server.shutdown();
    return 0;
  },
};
