import type { CliCommand } from "../cli.ts";
import { startHttpServer } from "../http_server.ts";
import { createRuntime } from "../runtime.ts";
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
    const tls = config.tlsCertFile === undefined || config.tlsKeyFile === undefined ? undefined : {
      cert: await Deno.readTextFile(config.tlsCertFile),
      key: await Deno.readTextFile(config.tlsKeyFile),
    };
    const server = startHttpServer({
      handler: (req, info) => runtime.app.fetch(req, info),
      hostname: config.host,
      port: config.port,
      logger,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
      ...(tls === undefined ? {} : { tls }),
      ...(config.httpRedirectPort === undefined
        ? {}
        : { redirect: { port: config.httpRedirectPort, origin: config.publicUrl } }),
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
    // Listen first, warm after: the dummy hash (timing-equal refusals) is made off
    // the event loop while /health already answers; a login that comes sooner
    // waits for it. The password dictionaries load on the first check that needs them.
    runtime.deps.hasher.dummyHash().catch((error: unknown) => {
      logger.error("bcrypt warm-up failed; the first login tries again", { error });
    });
    const { promise: stopped, resolve: stop } = Promise.withResolvers<string>();
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      if (Deno.build.os === "windows" && signal === "SIGTERM") continue;
      Deno.addSignalListener(signal, () => stop(signal));
    }
    logger.info("shutting down", { signal: await stopped });
    clearInterval(selfCheckTimer);
    await server.shutdown();
    return 0;
  },
};
