import { type HttpServer, startHttpServer } from "../../server/http_server.ts";
import { createRuntime, type Runtime } from "../../server/runtime.ts";
import {
  type MemoryLogger,
  memoryLogger,
  memoryMailer,
  testConfig,
  testHasher,
  testPolicy,
} from "../_helpers/world.ts";

/** A running service for end-to-end tests; `await using` shuts it down. */
export interface TestServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  readonly origin: string;
  readonly server: HttpServer;
  readonly kv: Deno.Kv;
  /** The wired service: its deps and services, for awaiting background work. */
  readonly runtime: Runtime;
  /** Keeps every log line (access log included) for assertions. */
  readonly logger: MemoryLogger;
}

/**
 * Starts the real service in-process on a free loopback port, with an in-memory store, or the
 * KV file `env.KV_PATH` (so command-line processes can work on the same store).
 */
export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  // Uploads go to the store, not to ./data on disk.
  const config = testConfig({ UPLOAD_STORE: "kv", ...env });
  const logger = memoryLogger();
  const kv = await Deno.openKv(env.KV_PATH ?? ":memory:");
  let server: HttpServer;
  let runtime: Runtime;
  try {
    runtime = await createRuntime(config, {
      kv,
      hasher: testHasher(),
      mailer: memoryMailer(),
      policy: testPolicy(),
      logger,
    });
    const app = runtime.app;
    server = startHttpServer({
      handler: (req, info) => app.fetch(req, info),
      hostname: "127.0.0.1",
      port: 0,
      logger,
    });
  } catch (error) {
    kv.close();
    throw error;
  }
  return {
    origin: `http://${server.addr.hostname}:${server.addr.port}`,
    server,
    kv,
    runtime,
    logger,
    async [Symbol.asyncDispose]() {
      try {
        await server.shutdown();
        await runtime.close();
      } finally {
        kv.close();
      }
    },
  };
}
