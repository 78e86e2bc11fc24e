import type { Mailer, SmtpMailerOptions } from "../../services/mail/mailer.ts";
import { login, randomUser, tokenPair } from "../_helpers/accounts.ts";
import { assert, assertEquals, assertMatch } from "../_helpers/assert.ts";
import { jsonInit } from "../_helpers/http.ts";
import { freePort, silentServer } from "../_helpers/net.ts";
import { smtpAvailable, smtpMailer, startSmtpSink } from "../_helpers/smtp.ts";
import { auditEvents, memoryLogger, openWorld, type World } from "../_helpers/world.ts";

const FROM = "Bulwark <no-reply@example.com>";
const NEW_PASSWORD = "Quiet-Meadow-Lantern-19?";
const HAS_SMTP = await smtpAvailable();

/** A world whose mail goes through a real SMTP mailer; `await using` closes both. */
async function smtpWorld(
  options: Omit<SmtpMailerOptions, "from" | "logger">,
): Promise<World<Mailer>> {
  await using cleanup = new AsyncDisposableStack();
  const mailer = cleanup.use(smtpMailer({ ...options, from: FROM, logger: memoryLogger() }));
  // The world goes first: it settles the sends in flight before the mailer closes.
  const w = cleanup.use(await openWorld({ mailer }));
  const owned = cleanup.move();
  return { ...w, [Symbol.asyncDispose]: () => owned.disposeAsync() };
}

/** Registers a new user; returns the email. */
async function register(w: World<Mailer>): Promise<string> {
  const user = randomUser();
  assertEquals((await w.app.request("/auth/register", jsonInit("POST", user))).status, 201);
  return user.email;
}

/** POST /auth/password/forgot; resolves when the app has answered, not when the mail is out. */
async function forgot(w: World<Mailer>, email: string): Promise<Response> {
  return await w.app.request("/auth/password/forgot", jsonInit("POST", { email }));
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
    await using w = await smtpWorld({ url: `smtp://127.0.0.1:${sink.port}` });
    const email = await register(w);
    assertEquals((await forgot(w, email)).status, 202);

    await w.services.passwords.settled();
    const raw = await sink.messages();
    assertEquals(raw.length, 1);
    const message = raw[0]!;
    assertMatch(message, /^From: Bulwark <no-reply@example\.com>$/m);
    assertMatch(message, new RegExp(`^To: ${email.replaceAll(".", "\\.")}\\r?$`, "m"));
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
    const pair = await tokenPair(await login(w.app, { email, password: NEW_PASSWORD }));
    assertEquals(pair.body.token_type, "bearer");
    assertEquals(await auditEvents(w.kv, "mail.send_failed"), []);
  },
});

Deno.test("POST /auth/password/forgot does not wait for a dead SMTP server", async (t) => {
  await t.step("nothing listening: 202 at once, then mail.send_failed is audited", async () => {
    await using w = await smtpWorld({ url: `smtp://127.0.0.1:${freePort()}`, timeoutMs: 300 });

    const email = await register(w);
    const started = performance.now();
    const res = await forgot(w, email);
    const elapsed = performance.now() - started;
    assertEquals(res.status, 202);
    assert(elapsed < 200, `answered in ${elapsed.toFixed(1)} ms`);

    await w.services.passwords.settled();
    const [failed] = await auditEvents(w.kv, "mail.send_failed");
    assert(failed !== undefined, "mail.send_failed is audited");
    assertEquals(failed.outcome, "failure");
    assertEquals(failed.details.purpose, "password_reset");
    assertEquals(failed.details.error, "MailDeliveryError");
    assert(failed.user_id !== undefined);
  });

  await t.step("a server that never greets: 202 well before the 300 ms mail timeout", async () => {
    await using server = silentServer();
    await using w = await smtpWorld({ url: `smtp://127.0.0.1:${server.port}`, timeoutMs: 300 });

    const email = await register(w);
    const started = performance.now();
    const res = await forgot(w, email);
    const answeredMs = performance.now() - started;
    assertEquals(res.status, 202);
    assert(answeredMs < 200, `answered in ${answeredMs.toFixed(1)} ms`);

    await w.services.passwords.settled();
    const failedMs = performance.now() - started;
    const [failed] = await auditEvents(w.kv, "mail.send_failed");
    assert(failed !== undefined, "mail.send_failed is audited");
    assertEquals(failed.details.purpose, "password_reset");
    assert(failedMs >= 250, `the send gave up after ${failedMs.toFixed(1)} ms, not the timeout`);
    assert(server.connections() >= 1, "the mailer did connect");
  });
});
