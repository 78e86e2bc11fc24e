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

/** Start-up warm-up begins this long after listening when no request has come before. */
export const WARM_UP_AFTER_MS = 250;

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
    // Listen first, warm after: warm-up (loading bcrypt, the dummy hash for timing-equal
    // refusals, the audit self-check) starts once the first request has been answered, or
    // WARM_UP_AFTER_MS after listening, so the request that woke a cold instance does not share
    // the CPU with it. A login that comes sooner makes the dummy hash itself and waits for it.
    // The password dictionaries, sanitize-html and the upload parsers load on first use instead.
    // Audit chain and certificate self-check: at warm-up, then every 6 hours.
    const check = () =>
      runtime.selfCheck.run().catch((error: unknown) => {
        logger.error("self-check could not run", {
          error: error instanceof Error ? error.message : String(error),
        });
      });
    let selfCheckTimer: ReturnType<typeof setInterval> | undefined;
    let warm = false;
    function warmUp(): void {
      if (warm) return;
      warm = true;
      clearTimeout(warmUpTimer);
      runtime.deps.hasher.dummyHash().catch((error: unknown) => {
        logger.error("bcrypt warm-up failed; the first login tries again", { error });
      });
      void check();
      selfCheckTimer = setInterval(check, 6 * 3600_000);
    }
    const warmUpTimer = setTimeout(warmUp, WARM_UP_AFTER_MS);
    let serveOne: Deno.ServeHandler<Deno.NetAddr> = async (req, info) => {
      serveOne = (req, info) => runtime.app.fetch(req, info);
      try {
        return await runtime.app.fetch(req, info);
      } finally {
        setTimeout(warmUp, 0);
      }
    };
    const handler: Deno.ServeHandler<Deno.NetAddr> = (req, info) => serveOne(req, info);
    const common = {
      handler,
      hostname: config.host,
      port: config.port,
      logger,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
    };
    const stopWarmUp = () => {
      warm = true;
      clearTimeout(warmUpTimer);
      clearInterval(selfCheckTimer);
    };
    let server: HttpServer;
    let automation: Disposable | undefined;
    try {
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
    } catch (error) {
      // No listener: no warm-up either (its timers would keep the process alive).
      stopWarmUp();
      throw error;
    }
    if (config.auditSigningKey === undefined) {
      logger.warn("AUDIT_SIGNING_KEY is not set: audit checkpoints are unsigned");
    }
    const { promise: stopped, resolve: stop } = Promise.withResolvers<string>();
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      if (Deno.build.os === "windows" && signal === "SIGTERM") continue;
      Deno.addSignalListener(signal, () => stop(signal));
    }
    logger.info("shutting down", { signal: await stopped });
    stopWarmUp();
    automation?.[Symbol.dispose]();
    await server.shutdown();
    return 0;
  },
};
