/**
 * Several processes on one embedded KV file (issue #15): two real servers share a store
 * while register, login, refresh and logout hammer both; no answer may be a 5xx, because
 * every write goes through one busy-retry policy ("database is locked" is transient).
 */
import { assert, assertEquals } from "../_helpers/assert.ts";
import { freePort } from "../_helpers/net.ts";
import { waitFor } from "../_helpers/wait.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const SECONDS = Number(Deno.env.get("BULWARK_SHARED_STORE_SECONDS") ?? "60");

function serve(kvPath: string, port: number): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "serve"],
    env: {
      APP_ENV: "test",
      PORT: String(port),
      PUBLIC_URL: "http://bulwark.test",
      KV_PATH: kvPath,
      UPLOAD_STORE: "kv",
      JWT_ACCESS_SECRET: "shared-store-access-secret-0123456789abcdef",
      JWT_REFRESH_SECRET: "shared-store-refresh-secret-0123456789abcdef",
      BCRYPT_ROUNDS: "10",
      RATE_LIMIT_LOGIN: "100000/minute",
      RATE_LIMIT_AUTHENTICATED: "100000/minute",
      RATE_LIMIT_ANONYMOUS: "100000/minute",
      INTRUSION_DETECTION: "false",
      LOG_LEVEL: "error",
    },
    clearEnv: true,
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

Deno.test({
  name: "two processes on one KV file answer register/login/refresh/logout without a 5xx",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const kvPath = `${dir}/shared.kv`;
    const ports = [freePort(), freePort()];
    const servers = ports.map((port) => serve(kvPath, port));
    try {
      const origins = ports.map((port) => `http://127.0.0.1:${port}`);
      for (const origin of origins) {
        await waitFor(`${origin} to listen`, async () => {
          try {
            const res = await fetch(`${origin}/health`);
            await res.body?.cancel();
            return res.ok;
          } catch (error) {
            if (error instanceof TypeError) return false;
            throw error;
          }
        }, { timeoutMs: 20_000, intervalMs: 100 });
      }
      const statuses = new Map<number, number>();
      const end = performance.now() + SECONDS * 1000;
      let flows = 0;
      const post = async (origin: string, path: string, body: unknown, auth?: string) => {
        const res = await fetch(origin + path, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(auth === undefined ? {} : { authorization: `Bearer ${auth}` }),
          },
          body: JSON.stringify(body),
        });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const text = await res.text();
        return text === "" ? {} : JSON.parse(text) as Record<string, unknown>;
      };
      const worker = async (id: number) => {
        while (performance.now() < end) {
          const [a, b] = flows++ % 2 === 0 ? origins : [origins[1]!, origins[0]!];
          const email = `p${id}-${crypto.randomUUID().slice(0, 8)}@example.com`;
          const password = "Correct-Horse-42-Battery!";
          await post(a!, "/auth/register", { email, password });
          const pair = await post(b!, "/auth/login", { email, password });
          const next = await post(a!, "/auth/refresh", { refresh_token: pair.refresh_token });
          await post(b!, "/auth/logout", {}, String(next.access_token));
        }
      };
      await Promise.all(Array.from({ length: 6 }, (_, i) => worker(i)));
      const fivexx = [...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
      assertEquals(fivexx, 0, JSON.stringify(Object.fromEntries(statuses)));
      assert((statuses.get(204) ?? 0) > 20, JSON.stringify(Object.fromEntries(statuses)));
    } finally {
      for (const server of servers) {
        server.kill("SIGTERM");
        await server.status;
        await server.stderr.cancel();
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});
