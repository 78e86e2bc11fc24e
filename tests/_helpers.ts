import { createApp } from "../routes/app.ts";
import { createServices } from "../services/container.ts";
import type { Role } from "../services/auth/permissions.ts";
import { assertEquals } from "./_assert.ts";
import type { Deps } from "../routes/deps.ts";
import type { Clock } from "../services/core/clock.ts";
import { type Config, type ConfigIo, loadConfig } from "../services/config/config.ts";
import { createLogger, type Logger } from "../services/core/logger.ts";
import type { Mail, Mailer } from "../services/mail/mailer.ts";
import { createBcryptHasher, type PasswordHasher } from "../services/identity/password_hasher.ts";
import { createPasswordPolicy, type PasswordPolicy } from "../services/identity/password_policy.ts";

/** A clock that only moves when told to. */
export class FakeClock implements Clock {
  #now: number;
  constructor(start: Date | string = "2026-01-01T00:00:00.000Z") {
    this.#now = new Date(start).getTime();
  }
  now(): Date {
    return new Date(this.#now);
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}

/** Config I/O backed by a map, so tests touch no disk. */
export function memoryIo(files: Record<string, string> = {}): ConfigIo & {
  files: Record<string, string>;
} {
  return {
    files,
    readTextFile: (path) => files[path] ?? null,
    writeSecretFile: (path, text) => {
      files[path] = text;
    },
  };
}

/** A test config: fixed distinct secrets, quiet logs, overridable by env names. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    APP_ENV: "test",
    JWT_ACCESS_SECRET: "test-access-secret-0123456789abcdef0123456789",
    JWT_REFRESH_SECRET: "test-refresh-secret-0123456789abcdef012345678",
    BCRYPT_ROUNDS: "10",
    CORS_ORIGINS: "https://app.example.com,https://*.example.org",
    LOG_LEVEL: "error",
    // Generous limits so feature tests are not throttled; rate-limit tests set their own.
    RATE_LIMIT_LOGIN: "1000/minute",
    RATE_LIMIT_AUTHENTICATED: "1000/minute",
    RATE_LIMIT_ANONYMOUS: "1000/minute",
    ...env,
  }, { io: memoryIo() });
}

/** A logger that keeps its lines for assertions. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger({ level: "debug", write: (line) => lines.push(line) }), {
    lines,
  });
}

/** Options of {@linkcode makeDeps}. */
export interface TestWorld {
  kv: Deno.Kv;
  env?: Record<string, string>;
  clock?: FakeClock;
  hasher?: PasswordHasher;
}

/** The same bcrypt implementation at its minimum cost, on the calling thread. */
export function testHasher(): PasswordHasher {
  return createBcryptHasher({ rounds: 4, workers: 0 });
}

let sharedPolicy: PasswordPolicy | undefined;

/** The password policy; built once per test process because its dictionaries are large. */
export function testPolicy(): PasswordPolicy {
  sharedPolicy ??= createPasswordPolicy();
  return sharedPolicy;
}

/** A mailer that keeps what it was asked to send. */
export function memoryMailer(): Mailer & { sent: Mail[] } {
  const sent: Mail[] = [];
  return {
    sent,
    send(mail) {
      sent.push(mail);
      return Promise.resolve();
    },
    close() {},
  };
}

/** Builds injected dependencies for one test world. */
export function makeDeps(
  world: TestWorld,
): Deps & {
  clock: FakeClock;
  logger: ReturnType<typeof memoryLogger>;
  mailer: ReturnType<typeof memoryMailer>;
} {
  return {
    config: testConfig(world.env),
    mailer: memoryMailer(),
    kv: world.kv,
    clock: world.clock ?? new FakeClock(),
    hasher: world.hasher ?? testHasher(),
    policy: testPolicy(),
    logger: memoryLogger(),
  };
}

/** Builds an app for in-process requests. */
export function makeApp(world: TestWorld): ReturnType<typeof createApp> {
  return createApp(makeDeps(world));
}

/** Env bindings as Deno.serve would pass them, for `app.request(path, init, env)`. */
export function peer(hostname = "203.0.113.7"): { remoteAddr: Deno.NetAddr } {
  return { remoteAddr: { transport: "tcp", hostname, port: 40000 } };
}

/** Parses a JSON body after checking the content type. */
export async function json(res: Response): Promise<Record<string, unknown>> {
  return await res.json() as Record<string, unknown>;
}

/** A password that satisfies the policy. */
export const GOOD_PASSWORD = "Correct-Horse-42-Battery!";

let userCounter = 0;

/** A fresh, unique registration body. */
export function randomUser(
  overrides: Partial<{ email: string; password: string; display_name: string }> = {},
): {
  email: string;
  password: string;
  display_name: string;
} {
  userCounter++;
  return {
    email: `user${userCounter}-${crypto.randomUUID().slice(0, 8)}@example.com`,
    password: GOOD_PASSWORD,
    display_name: `Tester ${userCounter}`,
    ...overrides,
  };
}

/** A JSON request init. */
export function jsonInit(
  method: string,
  body: unknown,
  headers: Record<string, string> = {},
): RequestInit {
  return {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  };
}

/** Bearer header for an access token. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** Anything with Hono's `request()`. */
export interface Requester {
  request(path: string, init?: RequestInit, env?: unknown): Response | Promise<Response>;
}

/** Registers a user and logs in; returns the user body and the token pair. */
export async function signUp(
  app: Requester,
  user = randomUser(),
): Promise<{ user: typeof user; id: string; access: string; refresh: string; sessionId: string }> {
  const reg = await app.request("/auth/register", jsonInit("POST", user));
  if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${await reg.text()}`);
  const { id } = await reg.json() as { id: string };
  const res = await app.request(
    "/auth/login",
    jsonInit("POST", { email: user.email, password: user.password }),
  );
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  const pair = await res.json() as {
    access_token: string;
    refresh_token: string;
    session_id: string;
  };
  return {
    user,
    id,
    access: pair.access_token,
    refresh: pair.refresh_token,
    sessionId: pair.session_id,
  };
}

/** One test world: a fresh in-memory store, a fake clock and an app built on them. */
export interface TestWorldApp extends Disposable {
  kv: Deno.Kv;
  clock: FakeClock;
  deps: ReturnType<typeof makeDeps>;
  app: ReturnType<typeof createApp>;
}

/** Opens a test world; `using w = await openWorld()` closes its store. */
export async function openWorld(env: Record<string, string> = {}): Promise<TestWorldApp> {
  const kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const deps = makeDeps({ kv, clock, env });
  return {
    kv,
    clock,
    deps,
    app: createApp(deps),
    [Symbol.dispose]() {
      kv.close();
    },
  };
}

/** An audit event as stored. */
export interface StoredAuditEvent {
  type: string;
  outcome: string;
  user_id?: string;
  details: Record<string, unknown>;
}

/** The stored audit events, optionally of one type, in id (time) order. */
export async function auditEvents(kv: Deno.Kv, type?: string): Promise<StoredAuditEvent[]> {
  const events: StoredAuditEvent[] = [];
  for await (const e of kv.list<StoredAuditEvent>({ prefix: ["audit"] })) {
    if (type === undefined || e.value.type === type) events.push(e.value);
  }
  return events;
}

/** The types of every stored audit event. */
export async function auditTypes(kv: Deno.Kv): Promise<string[]> {
  return (await auditEvents(kv)).map((e) => e.type);
}

/**
 * Asserts an RFC 9457 refusal: status, media type, `code`, and the members every
 * problem carries. Returns the body for further checks.
 */
export async function assertProblem(
  res: Response,
  status: number,
  code: string,
): Promise<Record<string, unknown>> {
  assertEquals(res.status, status, await res.clone().text());
  assertEquals(res.headers.get("content-type"), "application/problem+json; charset=utf-8");
  const body = await json(res);
  assertEquals(body.code, code);
  assertEquals(body.status, status);
  assertEquals(typeof body.title, "string");
  assertEquals(typeof body.detail, "string");
  assertEquals(body.request_id, res.headers.get("x-request-id"));
  return body;
}

/** Gives a signed-up user `role` and logs in again; returns the new access token. */
export async function promote(
  world: { deps: Deps; app: Requester },
  user: { id: string; user: { email: string; password: string } },
  role: Role,
): Promise<string> {
  await createServices(world.deps).users.updateUser(user.id, (u) => ({ ...u, role }));
  const res = await world.app.request(
    "/auth/login",
    jsonInit("POST", { email: user.user.email, password: user.user.password }),
  );
  if (res.status !== 200) throw new Error(`login after promotion failed: ${res.status}`);
  return String((await json(res)).access_token);
}
