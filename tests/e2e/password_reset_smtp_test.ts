import { createApp } from "../../routes/app.ts";
import { createSmtpMailer, type Mailer } from "../../services/mail/mailer.ts";
import { assert, assertEquals, assertMatch } from "../_assert.ts";
import { FakeClock, json, jsonInit, makeDeps, randomUser } from "../_helpers.ts";
import { freePort, smtpAvailable, startSmtpSink } from "../_smtp.ts";

const FROM = "Bulwark <no-reply@example.com>";
const NEW_PASSWORD = "Quiet-Meadow-Lantern-19?";
const HAS_SMTP = await smtpAvailable();

/** An app whose mail goes through `mailer`; `using` closes the mailer and the store. */
async function smtpWorld(mailerFor: (logger: ReturnType<typeof makeDeps>["logger"]) => Mailer) {
  const kv = await Deno.openKv(":memory:");
  const base = makeDeps({ kv, clock: new FakeClock() });
  let mailer: Mailer;
  try {
    mailer = mailerFor(base.logger);
  } catch (error) {
    kv.close();
    throw error;
  }
  const deps = { ...base, mailer };
  return {
    kv,
    deps,
    app: createApp(deps),
    [Symbol.dispose]() {
      try {
        mailer.close();
      } finally {
        kv.close();
      }
    },
  };
}

/** Polls `check` with real sleeps until it yields a value or `timeoutMs` passes. */
async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  while (true) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface AuditRecord {
  type: string;
  outcome: string;
  user_id?: string;
  details: Record<string, unknown>;
}

async function auditEvent(kv: Deno.Kv, type: string): Promise<AuditRecord | undefined> {
  for await (const e of kv.list<AuditRecord>({ prefix: ["audit"] })) {
    if (e.value.type === type) return e.value;
  }
  return undefined;
}

/** A TCP server that accepts connections and never says a word (no SMTP greeting). */
function silentServer(): AsyncDisposable & { port: number; connections(): number } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) conns.push(conn);
  })();
  return {
    port: listener.addr.port,
    connections: () => conns.length,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const conn of conns) {
        try {
          conn.close();
        } catch (error) {
          // The peer may already have gone after its timeout; that is the state we want.
          if (!(error instanceof Deno.errors.BadResource)) throw error;
        }
      }
    },
  };
}

/** The decoded text body of a single-part RFC 5322 message. */
function messageText(raw: string): string {
  const split = /\r?\n\r?\n/.exec(raw);
  assert(split !== null, "the message has a header/body separator");
  const headers = raw.slice(0, split.index);
  const body = raw.slice(split.index + split[0].length);
  const encoding = /^content-transfer-encoding:\s*(\S+)/im.exec(headers)?.[1]?.toLowerCase();
  let bytes: Uint8Array;
  if (encoding === "quoted-printable") {
    // Soft line breaks (`=` at the end of a line) join lines; `=XX` is one byte.
    const joined = body.replace(/=\r?\n/g, "");
    const out: number[] = [];
    for (let i = 0; i < joined.length; i++) {
      const hex = joined.slice(i + 1, i + 3);
      if (joined[i] === "=" && /^[0-9A-Fa-f]{2}$/.test(hex)) {
        out.push(parseInt(hex, 16));
        i += 2;
      } else {
        out.push(joined.charCodeAt(i));
      }
    }
    bytes = new Uint8Array(out);
  } else if (encoding === "base64") {
    bytes = Uint8Array.fromBase64(body.replace(/\s+/g, ""));
  } else {
    return body;
  }
  return new TextDecoder().decode(bytes);
}

Deno.test({
  name: HAS_SMTP
    ? "a password reset mailed through a real SMTP server can be completed"
    : "a password reset mailed through a real SMTP server can be completed " +
      "(ignored: needs /usr/bin/python3 with aiosmtpd, apt-get install python3-aiosmtpd)",
  ignore: !HAS_SMTP,
  async fn() {
    await using sink = await startSmtpSink();
    using w = await smtpWorld((logger) =>
      createSmtpMailer({ url: `smtp://127.0.0.1:${sink.port}`, from: FROM, logger })
    );
    const user = randomUser();
    assertEquals((await w.app.request("/auth/register", jsonInit("POST", user))).status, 201);

    const res = await w.app.request(
      "/auth/password/forgot",
      jsonInit("POST", { email: user.email }),
    );
    assertEquals(res.status, 202);

    const raw = await waitFor("the reset mail in the SMTP sink", async () => {
      const messages = await sink.messages();
      return messages.length > 0 ? messages : undefined;
    });
    assertEquals(raw.length, 1);
    const message = raw[0]!;
    assertMatch(message, /^From: Bulwark <no-reply@example\.com>$/m);
    assertMatch(message, new RegExp(`^To: ${user.email.replaceAll(".", "\\.")}\\r?$`, "m"));
    assertMatch(message, /^Subject: Reset your Bulwark password\r?$/m);
    const text = messageText(message);
    const match = /\/reset-password#token=([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])/.exec(text);
    assert(match !== null, `no token link in:\n${text}`);
    const token = match[1]!;

    const reset = await w.app.request(
      "/auth/password/reset",
      jsonInit("POST", { token, new_password: NEW_PASSWORD }),
    );
    assertEquals(reset.status, 204);
    const login = await w.app.request(
      "/auth/login",
      jsonInit("POST", { email: user.email, password: NEW_PASSWORD }),
    );
    assertEquals(login.status, 200);
    assertEquals((await json(login)).token_type, "bearer");
    assert(await auditEvent(w.kv, "mail.send_failed") === undefined);
  },
});

Deno.test("POST /auth/password/forgot does not wait for a dead SMTP server", async (t) => {
  await t.step("nothing listening: 202 at once, then mail.send_failed is audited", async () => {
    const port = freePort();
    using w = await smtpWorld((logger) =>
      createSmtpMailer({ url: `smtp://127.0.0.1:${port}`, from: FROM, logger, timeoutMs: 300 })
    );
    const user = randomUser();
    assertEquals((await w.app.request("/auth/register", jsonInit("POST", user))).status, 201);

    const started = performance.now();
    const res = await w.app.request(
      "/auth/password/forgot",
      jsonInit("POST", { email: user.email }),
    );
    const elapsed = performance.now() - started;
    assertEquals(res.status, 202);
    assert(elapsed < 200, `answered in ${elapsed.toFixed(1)} ms`);

    const failed = await waitFor(
      "the mail.send_failed audit event",
      () => auditEvent(w.kv, "mail.send_failed"),
    );
    assertEquals(failed.outcome, "failure");
    assertEquals(failed.details.purpose, "password_reset");
    assertEquals(failed.details.error, "MailDeliveryError");
    assert(failed.user_id !== undefined);
  });

  await t.step("a server that never greets: 202 well before the 300 ms mail timeout", async () => {
    await using server = silentServer();
    using w = await smtpWorld((logger) =>
      createSmtpMailer({
        url: `smtp://127.0.0.1:${server.port}`,
        from: FROM,
        logger,
        timeoutMs: 300,
      })
    );
    const user = randomUser();
    assertEquals((await w.app.request("/auth/register", jsonInit("POST", user))).status, 201);

    const started = performance.now();
    const res = await w.app.request(
      "/auth/password/forgot",
      jsonInit("POST", { email: user.email }),
    );
    const answeredMs = performance.now() - started;
    assertEquals(res.status, 202);
    assert(answeredMs < 200, `answered in ${answeredMs.toFixed(1)} ms`);

    const failed = await waitFor(
      "the mail.send_failed audit event",
      () => auditEvent(w.kv, "mail.send_failed"),
    );
    const failedMs = performance.now() - started;
    assertEquals(failed.details.purpose, "password_reset");
    assert(failedMs >= 250, `the send gave up after ${failedMs.toFixed(1)} ms, not the timeout`);
    assert(server.connections() >= 1, "the mailer did connect");
  });
});
