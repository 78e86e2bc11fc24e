import {
  createLogMailer,
  createMailer,
  createSmtpMailer,
  type Mail,
  MailDeliveryError,
} from "../../../services/mail/mailer.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertThrows,
} from "../../_helpers/assert.ts";
import { freePort, silentServer } from "../../_helpers/net.ts";
import {
  opensslAvailable,
  smtpAvailable,
  smtpMailer,
  startFakeSmtp,
  startSmtpSink,
} from "../../_helpers/smtp.ts";
import { holdTimeouts } from "../../_helpers/timers.ts";
import { waitFor } from "../../_helpers/wait.ts";
import { memoryLogger } from "../../_helpers/world.ts";

const FROM = "Bulwark <no-reply@bulwark.test>";
const MAIL: Mail = {
  to: "alice@example.com",
  subject: "Reset your password",
  text: "Your reset code is 493-201.\nIt expires in 15 minutes.",
};

/** A breaker reset delay no other timer uses, so `holdTimeouts()` holds only the breaker's. */
const RESET_MS = 3_600_000;

const HAS_SMTP = await smtpAvailable();
const HAS_TLS_SINK = HAS_SMTP && await opensslAvailable();
const NO_SMTP = "needs /usr/bin/python3 with aiosmtpd (apt-get install python3-aiosmtpd)";
if (!HAS_SMTP) {
  // Shows up as "ignored" in the run, so the missing prerequisite is visible rather than silent.
  Deno.test({ name: `createSmtpMailer() real-server tests ${NO_SMTP}`, ignore: true, fn() {} });
} else if (!HAS_TLS_SINK) {
  Deno.test({ name: "createSmtpMailer() TLS tests need openssl on PATH", ignore: true, fn() {} });
}

/** Runs `fn` and returns how long it took to settle, in milliseconds. */
async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const start = performance.now();
  const result = await fn();
  return { ms: performance.now() - start, result };
}

Deno.test({
  name: "createSmtpMailer() delivers a message to a real SMTP server",
  ignore: !HAS_SMTP,
  async fn() {
    await using sink = await startSmtpSink();
    const logger = memoryLogger();
    using mailer = smtpMailer({ url: `smtp://127.0.0.1:${sink.port}`, from: FROM, logger });

    await mailer.send(MAIL);

    const messages = await sink.messages();
    assertEquals(messages.length, 1);
    const raw = messages[0] ?? "";
    assertMatch(raw, /^From: Bulwark <no-reply@bulwark\.test>$/m);
    assertMatch(raw, /^To: alice@example\.com$/m);
    assertMatch(raw, /^X-RcptTo: alice@example\.com$/m);
    assertMatch(raw, /^Subject: Reset your password$/m);
    assertMatch(raw, /^Your reset code is 493-201\.\r?\nIt expires in 15 minutes\./m);
    assertEquals(logger.lines, []);
  },
});

Deno.test({
  name: "createSmtpMailer() refuses header and recipient injection before sending",
  ignore: !HAS_SMTP,
  async fn(t) {
    await using sink = await startSmtpSink();
    using mailer = smtpMailer({
      url: `smtp://127.0.0.1:${sink.port}`,
      from: FROM,
      logger: memoryLogger(),
    });

    for (
      const [label, mail] of [
        ["CR LF in to", { ...MAIL, to: "alice@example.com\r\nBcc: eve@example.com" }],
        ["LF in to", { ...MAIL, to: "alice@example.com\nBcc: eve@example.com" }],
        ["CR in subject", { ...MAIL, subject: "Hello\rBcc: eve@example.com" }],
        ["LF in subject", { ...MAIL, subject: "Hello\nBcc: eve@example.com" }],
        ["a list in to", { ...MAIL, to: "alice@example.com, eve@example.com" }],
        ["a display name in to", { ...MAIL, to: "Alice <eve@example.com>" }],
      ] as const
    ) {
      await t.step(`rejects ${label}`, async () => {
        await assertRejects(() => mailer.send(mail), TypeError);
      });
    }

    await t.step("sent nothing", async () => {
      assertEquals(await sink.messages(), []);
    });

    await t.step("rejects CR or LF in from when created", () => {
      assertThrows(
        () =>
          createSmtpMailer({
            url: "smtp://127.0.0.1:1",
            from: "a@b.test\r\nBcc: e@x.test",
            logger: memoryLogger(),
          }),
        TypeError,
      );
    });
  },
});

Deno.test({
  name: "createSmtpMailer() refuses a server whose certificate is not trusted",
  ignore: !HAS_TLS_SINK,
  async fn(t) {
    for (const tls of ["starttls", "smtps"] as const) {
      await t.step(`over ${tls}`, async () => {
        await using sink = await startSmtpSink({ tls });
        const scheme = tls === "smtps" ? "smtps" : "smtp";
        using mailer = smtpMailer({
          url: `${scheme}://localhost:${sink.port}`,
          from: FROM,
          logger: memoryLogger(),
        });

        const error = await assertRejects(() => mailer.send(MAIL), MailDeliveryError);

        assertEquals(error.reason, "failed");
        assertMatch(error.message, /certificate/);
        assertEquals(await sink.messages(), []);
      });
    }
  },
});

Deno.test("createSmtpMailer() opens the circuit against a dead server, then fails fast", async () => {
  const logger = memoryLogger();
  using mailer = smtpMailer({
    url: `smtp://127.0.0.1:${freePort()}`,
    from: FROM,
    logger,
    timeoutMs: 300,
    breaker: { volumeThreshold: 2, resetTimeoutMs: 60_000 },
  });

  for (let i = 0; i < 2; i++) {
    const { ms, result: error } = await timed(() =>
      mailer.send(MAIL).then(
        () => assert(false, "send to a dead server resolved"),
        (e: unknown) => e,
      )
    );
    assert(error instanceof MailDeliveryError, `expected MailDeliveryError, got ${error}`);
    assertEquals(error.reason, "failed");
    assertEquals(error.name, "MailDeliveryError");
    assert(error.cause instanceof Error);
    assert(ms < 1000, `a refused connection took ${ms} ms`);
  }

  const { ms, result: error } = await timed(() =>
    assertRejects(() => mailer.send(MAIL), MailDeliveryError)
  );
  assertEquals(error.reason, "circuit_open");
  assert(ms < 50, `an open circuit took ${ms} ms to refuse`);
  assertEquals(logger.lines.filter((l) => l.includes("mail circuit opened")).length, 1);
});

Deno.test("createSmtpMailer() gives up on a server that never answers after timeoutMs", async () => {
  await using server = silentServer();
  using mailer = smtpMailer({
    url: `smtp://127.0.0.1:${server.port}`,
    from: FROM,
    logger: memoryLogger(),
    timeoutMs: 300,
  });

  const { ms, result: error } = await timed(() =>
    assertRejects(() => mailer.send(MAIL), MailDeliveryError)
  );

  assertEquals(error.reason, "timeout");
  assert(ms >= 250 && ms < 1500, `the send settled after ${ms} ms, not about 300 ms`);
});

Deno.test("createSmtpMailer() does not open the circuit for a refused recipient", async () => {
  await using server = startFakeSmtp({
    reply: (line) => line.startsWith("RCPT") ? "550 5.1.1 No such user" : undefined,
  });
  using mailer = smtpMailer({
    url: `smtp://127.0.0.1:${server.port}`,
    from: FROM,
    logger: memoryLogger(),
    breaker: { volumeThreshold: 1 },
  });

  for (let i = 0; i < 3; i++) {
    const error = await assertRejects(() => mailer.send(MAIL), MailDeliveryError);
    assertEquals(error.reason, "failed");
    assertMatch(error.message, /550/);
  }
});

Deno.test({
  name: "createSmtpMailer() closes the circuit again once the server is back",
  ignore: !HAS_SMTP,
  async fn(t) {
    // The breaker's reset timer is held, not slept through: fire() is "resetTimeoutMs passed".
    using reset = holdTimeouts(RESET_MS);
    const port = freePort();
    const logger = memoryLogger();
    using mailer = smtpMailer({
      url: `smtp://127.0.0.1:${port}`,
      from: FROM,
      logger,
      timeoutMs: 300,
      breaker: { volumeThreshold: 1, resetTimeoutMs: RESET_MS },
    });
    await assertRejects(() => mailer.send(MAIL), MailDeliveryError);
    const open = await assertRejects(() => mailer.send(MAIL), MailDeliveryError);
    assertEquals(open.reason, "circuit_open");
    assertEquals(reset.pending(), 1, "opening the circuit scheduled its reset");

    await using sink = await startSmtpSink({ port });
    await t.step("until resetTimeoutMs passes, the circuit stays open", async () => {
      const still = await assertRejects(() => mailer.send(MAIL), MailDeliveryError);
      assertEquals(still.reason, "circuit_open");
    });
    await t.step("then one trial send goes through and closes it", async () => {
      reset.fire();
      assert(logger.lines.some((l) => l.includes("mail circuit half-open")));
      await mailer.send(MAIL);
      assertEquals((await sink.messages()).length, 1);
      assert(logger.lines.some((l) => l.includes("mail circuit closed")));
      await mailer.send(MAIL);
      assertEquals((await sink.messages()).length, 2);
    });
  },
});

Deno.test("createSmtpMailer() opens the circuit again when the half-open trial fails", async () => {
  using reset = holdTimeouts(RESET_MS);
  const logger = memoryLogger();
  using mailer = smtpMailer({
    url: `smtp://127.0.0.1:${freePort()}`,
    from: FROM,
    logger,
    timeoutMs: 300,
    breaker: { volumeThreshold: 1, resetTimeoutMs: RESET_MS },
  });
  await assertRejects(() => mailer.send(MAIL), MailDeliveryError);
  reset.fire();

  const trial = await assertRejects(() => mailer.send(MAIL), MailDeliveryError);
  assertEquals(trial.reason, "failed", "the trial send was attempted");
  const after = await assertRejects(() => mailer.send(MAIL), MailDeliveryError);
  assertEquals(after.reason, "circuit_open");
  assertEquals(logger.lines.filter((l) => l.includes("mail circuit opened")).length, 2);
  assertEquals(reset.pending(), 1, "the reopened circuit scheduled a new reset");
});

Deno.test("createSmtpMailer() close() aborts a send in flight and refuses later ones", async () => {
  await using server = silentServer();
  const mailer = createSmtpMailer({
    url: `smtp://127.0.0.1:${server.port}`,
    from: FROM,
    logger: memoryLogger(),
    timeoutMs: 5000,
  });

  const pending = timed(() => assertRejects(() => mailer.send(MAIL), MailDeliveryError));
  await waitFor("the send to connect", () => server.connections() > 0);
  mailer.close();
  const { ms, result: error } = await pending;
  assertEquals(error.reason, "closed");
  assert(ms < 1000, `close() took ${ms} ms to end the send`);

  const later = await assertRejects(() => mailer.send(MAIL), MailDeliveryError);
  assertEquals(later.reason, "closed");
});

Deno.test("createSmtpMailer() keeps SMTP credentials out of errors and logs", async (t) => {
  const secret = "s3cret-Pa55";
  const user = "mailer-login";
  const leaks = (text: string) => text.includes(secret) || text.includes(user);

  await t.step("in a delivery error from a dead server", async () => {
    const logger = memoryLogger();
    using mailer = smtpMailer({
      url: `smtp://${user}:${secret}@127.0.0.1:${freePort()}`,
      from: FROM,
      logger,
      breaker: { volumeThreshold: 1 },
    });
    const failed = await assertRejects(() => mailer.send(MAIL), MailDeliveryError);
    const open = await assertRejects(() => mailer.send(MAIL), MailDeliveryError);
    for (const error of [failed, open]) {
      logger.error("mail failed", { error });
      assert(!leaks(error.message), error.message);
      assert(
        !leaks(Deno.inspect(error, { depth: 10 })),
        "the error or its cause names a credential",
      );
    }
    assert(logger.lines.length >= 2);
    for (const line of logger.lines) assert(!leaks(line), line);
  });

  await t.step("when the server offers no STARTTLS and is not local", async () => {
    // 127.0.0.2 is reachable but not in the loopback allowlist, so it stands for a remote host.
    await using server = startFakeSmtp({ hostname: "127.0.0.2", authOffered: true });
    using mailer = smtpMailer({
      url: `smtp://${user}:${secret}@127.0.0.2:${server.port}`,
      from: FROM,
      logger: memoryLogger(),
    });
    const error = await assertRejects(() => mailer.send(MAIL), MailDeliveryError);
    assertEquals(error.reason, "failed", error.message);
    assert(!leaks(Deno.inspect(error, { depth: 10 })));
    assertMatch(error.message, /STARTTLS/);
    assert(server.received.includes("STARTTLS"));
    assert(!server.received.some((line) => /^AUTH/i.test(line)), "sent AUTH without TLS");
  });

  await t.step("but logs in without TLS to a loopback relay", async () => {
    await using server = startFakeSmtp({
      authOffered: true,
      reply: (line) => line.startsWith("AUTH") ? "235 2.7.0 accepted" : undefined,
    });
    using mailer = smtpMailer({
      url: `smtp://${user}:${secret}@127.0.0.1:${server.port}`,
      from: FROM,
      logger: memoryLogger(),
    });
    await mailer.send(MAIL);
    assert(server.received.some((line) => /^AUTH PLAIN /.test(line)));
  });

  await t.step("in the TypeError for a malformed URL", () => {
    for (
      const url of [
        `http://${user}:${secret}@mail.example.com`,
        `smtp://${user}:${secret}@mail.example.com/path?debug=true`,
        `smtp://${user}:${secret}@exa mple.com`,
      ]
    ) {
      const error = assertThrows(
        () => createSmtpMailer({ url, from: FROM, logger: memoryLogger() }),
        TypeError,
      );
      assert(!leaks(error.message), error.message);
    }
  });
});

Deno.test("createLogMailer() writes the message as one log line", async (t) => {
  await t.step("with to, subject and body", async () => {
    const logger = memoryLogger();
    const mailer = createLogMailer(logger);
    await mailer.send(MAIL);
    mailer.close();

    assertEquals(logger.lines.length, 1);
    const line = JSON.parse(logger.lines[0] ?? "") as Record<string, unknown>;
    assertEquals(line.level, "info");
    assertEquals(line.msg, "mail (development: no SMTP_URL)");
    assertEquals(line.to, MAIL.to);
    assertEquals(line.subject, MAIL.subject);
    assertEquals(line.body, MAIL.text);
  });

  await t.step("refuses header injection like the SMTP mailer", async () => {
    const logger = memoryLogger();
    const mailer = createLogMailer(logger);
    await assertRejects(
      () => mailer.send({ ...MAIL, subject: "Hi\r\nBcc: eve@example.com" }),
      TypeError,
    );
    assertEquals(logger.lines, []);
  });
});

Deno.test("createMailer() never logs mail text in production", async (t) => {
  await t.step("production without SMTP refuses and logs only the subject", async () => {
    const logger = memoryLogger();
    const mailer = createMailer({
      smtpUrl: undefined,
      from: "a@b.example",
      production: true,
      logger,
    });
    const error = await assertRejects(
      () => mailer.send({ to: "u@example.com", subject: "Reset", text: "https://x/#token=SECRET" }),
      MailDeliveryError,
    );
    assertEquals(error.reason, "failed");
    assert(!logger.lines.some((l) => l.includes("SECRET")));
    assert(logger.lines.some((l) => l.includes("SMTP_URL is not configured")));
  });
  await t.step("development without SMTP logs the message", async () => {
    const logger = memoryLogger();
    const mailer = createMailer({
      smtpUrl: undefined,
      from: "a@b.example",
      production: false,
      logger,
    });
    await mailer.send({ to: "u@example.com", subject: "Reset", text: "link" });
    assert(logger.lines.some((l) => l.includes("link")));
  });
});
