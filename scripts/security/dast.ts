/**
 * DAST: a fresh Bulwark (in-process, in-memory store, plain HTTP on loopback) attacked by Debian's
 * `sqlmap` (every parameter of {@linkcode DAST_TARGETS}) and `wapiti` (crawl + GET parameters).
 * Both tools exit 0 whatever they find, so their reports are parsed: any finding fails.
 *
 * @module
 */
import type { Hono } from "hono";
import { startHttpServer } from "../../server/http_server.ts";
import { createRuntime, type Runtime } from "../../server/runtime.ts";
import type { AppEnv } from "../../middleware/app_env.ts";
import { loadConfig } from "../../services/config/config.ts";
import { randomSecret } from "../../services/core/crypto.ts";
import type { Logger } from "../../services/core/logger.ts";
import type { GateResult } from "./gates.ts";

/** One attack surface. `{email}`/`{password}` in values are replaced by a real account's. */
export interface DastTarget {
  readonly name: string;
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly query?: Record<string, string>;
  readonly json?: Record<string, string>;
  readonly form?: Record<string, string>;
  /** Send a Bearer token of a user with this role. */
  readonly auth?: "user" | "admin";
  /** Not built yet on every branch: skipped (and said so) while the route answers 404. */
  readonly optional?: true;
}

/**
 * The parameters under attack: add a route here when it takes input. Valid credentials are sent
 * so a boolean-based test sees a success page to compare against.
 */
export const DAST_TARGETS: readonly DastTarget[] = [
  {
    name: "login (JSON)",
    method: "POST",
    path: "/auth/login",
    json: { email: "{email}", password: "{password}" },
  },
  {
    name: "login (OAuth2 password form)",
    method: "POST",
    path: "/auth/login",
    form: { grant_type: "password", username: "{email}", password: "{password}" },
  },
  {
    name: "password forgot",
    method: "POST",
    path: "/auth/password/forgot",
    json: { email: "{email}" },
  },
  {
    name: "notes search",
    method: "GET",
    path: "/notes",
    query: { q: "hello" },
    auth: "user",
    optional: true,
  },
  {
    name: "admin user search",
    method: "GET",
    path: "/admin/users",
    query: { q: "dast", role: "user", limit: "10" },
    auth: "admin",
    optional: true,
  },
  {
    name: "admin audit search",
    method: "GET",
    path: "/admin/audit",
    query: { type: "login", user_id: "x" },
    auth: "admin",
    optional: true,
  },
];

/** A fresh instance to scan. */
export interface DastInstance extends AsyncDisposable {
  readonly origin: string;
  readonly app: Hono<AppEnv>;
  readonly email: string;
  readonly password: string;
  token(role: "user" | "admin"): string;
}

/**
 * Starts Bulwark on a free loopback port with an in-memory store. Rate limits are off and the
 * lockout threshold high, so that the scanners test input handling rather than throttling.
 * `extend` may add routes before the server starts (the planted-route drill uses it).
 */
export async function startDastInstance(
  extend?: (app: Hono<AppEnv>) => void,
  logger?: Logger,
): Promise<DastInstance> {
  const config = loadConfig({
    APP_ENV: "test",
    JWT_ACCESS_SECRET: randomSecret(),
    JWT_REFRESH_SECRET: randomSecret(),
    KV_PATH: ":memory:",
    UPLOAD_STORE: "kv",
    BCRYPT_ROUNDS: "10",
    RATE_LIMIT_ENABLED: "false",
    LOCKOUT_THRESHOLD: "100",
    LOG_LEVEL: "error",
  });
  const runtime: Runtime = await createRuntime(config, logger === undefined ? {} : { logger });
  extend?.(runtime.app);
  const server = startHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    logger: runtime.deps.logger,
    handler: (req, info) => runtime.app.fetch(req, info),
  });
  const origin = `http://127.0.0.1:${server.addr.port}`;
  const email = "dast.user@example.com";
  const password = "Dast-Scan-Pw-2026!x";
  const tokens: Record<string, string> = {};
  const post = (path: string, body: unknown) =>
    fetch(`${origin}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const reg = await post("/auth/register", { email, password, display_name: "Dast User" });
  const { id } = await reg.json();
  tokens.user = (await (await post("/auth/login", { email, password })).json()).access_token;
  const adminEmail = "dast.admin@example.com";
  const adminReg = await post("/auth/register", {
    email: adminEmail,
    password,
    display_name: "Dast Admin",
  });
  const adminId = (await adminReg.json()).id;
  await runtime.services.users.updateUser(String(adminId), (u) => ({ ...u, role: "admin" }));
  tokens.admin =
    (await (await post("/auth/login", { email: adminEmail, password })).json()).access_token;
  if (id === undefined || tokens.user === undefined || tokens.admin === undefined) {
    throw new Error("DAST set-up could not create its accounts");
  }
  return {
    origin,
    app: runtime.app,
    email,
    password,
    token: (role) => tokens[role] ?? "",
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await runtime.close();
    },
  };
}

function fill(values: Record<string, string>, instance: DastInstance): Record<string, string> {
  return Object.fromEntries(
    Object.entries(values).map(([k, v]) => [
      k,
      v.replace("{email}", instance.email).replace("{password}", instance.password),
    ]),
  );
}

/** sqlmap against one target; returns the injectable parameters it reports. */
export async function sqlmapTarget(
  instance: DastInstance,
  target: DastTarget,
  outDir: string,
): Promise<string[]> {
  const url = new URL(target.path, instance.origin);
  for (const [k, v] of Object.entries(fill(target.query ?? {}, instance))) {
    url.searchParams.set(k, v);
  }
  const args = [
    "-u",
    url.href,
    "--method",
    target.method,
    "--batch",
    "--level",
    "1",
    "--risk",
    "1",
    // Boolean, error and UNION based: time-based blind is left out because a bcrypt-bound login
    // has latency noise of its own and would cost minutes per parameter.
    "--technique",
    "BEU",
    "--threads",
    "4",
    "--timeout",
    "10",
    "--retries",
    "0",
    // Refusals (bad credentials, throttling, validation) are answers, not reasons to stop.
    "--ignore-code",
    "400,401,403,404,409,422,423,429",
    "--disable-coloring",
    "--skip-waf",
    "--output-dir",
    outDir,
  ];
  if (target.json !== undefined) {
    args.push(
      "--data",
      JSON.stringify(fill(target.json, instance)),
      "-H",
      "Content-Type: application/json",
    );
  } else if (target.form !== undefined) {
    args.push("--data", new URLSearchParams(fill(target.form, instance)).toString());
  }
  if (target.auth !== undefined) {
    args.push("-H", `Authorization: Bearer ${instance.token(target.auth)}`);
  }
  await Deno.mkdir(outDir, { recursive: true });
  await new Deno.Command("sqlmap", { args, stdout: "null", stderr: "null", stdin: "null" })
    .output();
  // sqlmap writes results-<date>.csv into the output folder (none when it found nothing).
  let csv = "";
  for await (const entry of Deno.readDir(outDir)) {
    if (/^results-.*\.csv$/.test(entry.name)) {
      csv += await Deno.readTextFile(`${outDir}/${entry.name}`);
    }
  }
  // Header "Target URL,Place,Parameter,Technique(s),Note(s)", then one row per injectable parameter.
  return csv.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("Target URL,"))
    .map((row) => `${target.name}: injectable ${row}`);
}

/** Pages wapiti starts from besides the GET targets: the HTML page (nonce CSP) and the spec. */
const WAPITI_PAGES = ["/docs", "/openapi.json", "/health", "/users/me"];

/**
 * wapiti crawl from `/`, the pages above and every GET target URL (headers, cookies, CSP, and
 * injection into GET parameters); returns its findings and anomalies (5xx answers).
 */
export async function wapitiScan(instance: DastInstance, outDir: string): Promise<string[]> {
  const starts = [
    ...WAPITI_PAGES.map((page) => new URL(page, instance.origin).href),
    ...DAST_TARGETS.filter((t) => t.method === "GET").map((t) => {
      const url = new URL(t.path, instance.origin);
      for (const [k, v] of Object.entries(t.query ?? {})) url.searchParams.set(k, v);
      return url.href;
    }),
  ].flatMap((href) => ["-s", href]);
  const report = `${outDir}/wapiti.json`;
  await new Deno.Command("wapiti", {
    args: [
      "-u",
      `${instance.origin}/`,
      ...starts,
      "--scope",
      "folder",
      "-d",
      "3",
      // No ssrf/xxe: those need wapiti's public callback server.
      "-m",
      "sql,blindsql,xss,permanentxss,exec,file,crlf,redirect,http_headers,cookieflags,csp",
      "--max-scan-time",
      "90",
      "--max-attack-time",
      "20",
      "-t",
      "10",
      "--flush-session",
      "--no-bugreport",
      "-H",
      `Authorization: Bearer ${instance.token("admin")}`,
      "-f",
      "json",
      "-o",
      report,
    ],
    stdout: "null",
    stderr: "null",
    stdin: "null",
  }).output();
  const parsed = JSON.parse(await Deno.readTextFile(report)) as {
    vulnerabilities?: Record<
      string,
      Array<{ method: string; path: string; parameter: string; info: string }>
    >;
    anomalies?: Record<
      string,
      Array<{ method: string; path: string; parameter: string; info: string }>
    >;
  };
  const findings: string[] = [];
  for (const group of [parsed.vulnerabilities ?? {}, parsed.anomalies ?? {}]) {
    for (const [category, items] of Object.entries(group)) {
      for (const item of items) {
        findings.push(
          `wapiti ${category}: ${item.method} ${item.path} ${item.parameter} — ${item.info}`,
        );
      }
    }
  }
  return findings;
}

/** Every DAST target through sqlmap, then wapiti; any finding fails. */
export async function dastGate(
  options: {
    targets?: readonly DastTarget[];
    extend?: (app: Hono<AppEnv>) => void;
    /** @default JSON lines at `error` on stdout */
    logger?: Logger;
  } = {},
): Promise<GateResult> {
  const targets = options.targets ?? DAST_TARGETS;
  await using instance = await startDastInstance(options.extend, options.logger);
  const outDir = await Deno.makeTempDir({ prefix: "bulwark-dast-" });
  const findings: string[] = [];
  const notes: string[] = [];
  try {
    for (const [i, target] of targets.entries()) {
      if (target.optional) {
        const probe = await fetch(new URL(target.path, instance.origin), {
          headers: target.auth === undefined
            ? {}
            : { authorization: `Bearer ${instance.token(target.auth)}` },
        });
        await probe.body?.cancel();
        if (probe.status === 404) {
          notes.push(`${target.name}: ${target.path} not built on this branch, skipped`);
          continue;
        }
      }
      const targetStarted = performance.now();
      const found = await sqlmapTarget(instance, target, `${outDir}/sqlmap-${i}`);
      findings.push(...found);
      notes.push(
        `${target.name}: sqlmap ${found.length === 0 ? "clean" : `${found.length} finding(s)`} (${
          seconds(targetStarted)
        } s)`,
      );
    }
    const started = performance.now();
    const web = await wapitiScan(instance, outDir);
    findings.push(...web);
    notes.push(
      `wapiti: ${web.length === 0 ? "clean" : `${web.length} finding(s)`} (${seconds(started)} s)`,
    );
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
  return {
    name: "DAST (sqlmap + wapiti)",
    status: findings.length === 0 ? "pass" : "fail",
    details: [...findings, ...notes],
  };
}

function seconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(1);
}
