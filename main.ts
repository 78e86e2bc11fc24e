// deno-lint-ignore-file no-console -- the command line talks to its terminal.
import { createApp } from "./routes/app.ts";
import { VERSION } from "./routes/docs.ts";
import { createSystemClock } from "./services/clock.ts";
import { createServices } from "./services/container.ts";
import { parseCommand, USAGE } from "./services/cli.ts";
import { type Config, ConfigError, describeConfig, loadConfig } from "./services/config.ts";
import { startHttpServer } from "./services/http_server.ts";
import { createLogger } from "./services/logger.ts";
import { createMailer } from "./services/mailer.ts";
import { createClamdScanner } from "./services/scanner.ts";
import { createBcryptHasher } from "./services/password_hasher.ts";

async function serve(config: Config): Promise<void> {
  const logger = createLogger({ level: config.logLevel });
  if (config.generatedSecrets.length > 0) {
    logger.warn("development secrets generated; set them in the environment for production", {
      names: config.generatedSecrets,
      stored_in: config.appEnv === "development" ? `${config.dataDir}/dev-secrets.json` : "memory",
    });
  }
  if (config.kvPath !== undefined && !/^https?:/.test(config.kvPath)) {
    await Deno.mkdir(config.kvPath.slice(0, config.kvPath.lastIndexOf("/")) || ".", {
      recursive: true,
      mode: 0o700,
    });
  }
  const kv = await Deno.openKv(config.kvPath);
  const hasher = createBcryptHasher({ rounds: config.bcryptRounds });
  // Pay for the dummy hash (timing-equal refusals) before the first login does.
  await hasher.dummyHash();
  const mailer = createMailer({
    smtpUrl: config.smtpUrl,
    from: config.mailFrom,
    production: config.appEnv === "production",
    logger,
  });
  // The scanner holds breaker timers and sockets: built here so shutdown can close it.
  const scanner = config.clamavAddress === undefined ? null : createClamdScanner({
    address: config.clamavAddress,
    logger,
    timeoutMs: config.clamavTimeoutMs,
  });
  const deps = {
    config,
    kv,
    clock: createSystemClock(),
    hasher,
    mailer,
    scanner,
    logger,
  };
  const services = createServices(deps);
  const app = createApp(deps, services);
  const tls = config.tlsCertFile === undefined || config.tlsKeyFile === undefined ? undefined : {
    cert: await Deno.readTextFile(config.tlsCertFile),
    key: await Deno.readTextFile(config.tlsKeyFile),
  };
  const server = startHttpServer({
    handler: (req, info) => app.fetch(req, info),
    hostname: config.host,
    port: config.port,
    logger,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    ...(tls === undefined ? {} : { tls }),
    ...(config.httpRedirectPort === undefined
      ? {}
      : { redirect: { port: config.httpRedirectPort, origin: config.publicUrl } }),
  });
  const { promise: stopped, resolve: stop } = Promise.withResolvers<string>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    if (Deno.build.os === "windows" && signal === "SIGTERM") continue;
    Deno.addSignalListener(signal, () => stop(signal));
  }
  logger.info("shutting down", { signal: await stopped });
  await server.shutdown();
  // Background work still holds the store: reset mails and buffered API key usage.
  await services.passwords.settled();
  await services.apiKeys.drain();
  hasher.close();
  mailer.close();
  scanner?.close();
  kv.close();
}

async function main(args: string[]): Promise<number> {
  const command = parseCommand(args);
  switch (command.kind) {
    case "help":
      console.log(USAGE);
      return 0;
    case "version":
      console.log(`bulwark ${VERSION}`);
      return 0;
    case "usage-error":
      console.error(`bulwark: ${command.message}\n\n${USAGE}`);
      return 2;
  }
  let config: Config;
  try {
    config = loadConfig(Deno.env.toObject());
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return 1;
  }
  if (command.kind === "check-config") {
    console.log(JSON.stringify(describeConfig(config), null, 2));
    return 0;
  }
  await serve(config);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
