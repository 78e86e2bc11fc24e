import type nodemailer from "nodemailer";
// @ts-types="@types/opossum"
import CircuitBreaker from "opossum";
import type { Logger } from "../core/logger.ts";

/** One plain-text message to one recipient. */
export interface Mail {
  /** A single bare address, `user@example.com`. */
  to: string;
  subject: string;
  text: string;
}

/** Sends mail; the caller audits a {@linkcode MailDeliveryError}. */
export interface Mailer {
  /**
   * Delivers `mail`, or rejects.
   *
   * @throws {TypeError} when `to` or `subject` could inject headers or recipients.
   * @throws {MailDeliveryError} when the message was not delivered.
   */
  send(mail: Mail): Promise<void>;
  /** Aborts sends in flight and releases the transport and the breaker's timers. */
  close(): void;
  /** The circuit breaker's state, for metrics (SMTP mailers only). */
  breakerState?(): "closed" | "half_open" | "open";
}

/** Why a message was not delivered. */
export type MailDeliveryFailure =
  /** The breaker is open after repeated failures, so nothing was attempted. */
  | "circuit_open"
  /** The server did not finish within `timeoutMs`. */
  | "timeout"
  /** The mailer was closed before or during the send. */
  | "closed"
  /** The server refused the message or could not be reached. */
  | "failed";

/**
 * A message could not be delivered. Not an `AppError`: it never reaches HTTP, because mail is
 * sent in the background and the caller audits the failure.
 */
export class MailDeliveryError extends Error {
  override name = "MailDeliveryError";
  readonly reason: MailDeliveryFailure;

  constructor(message: string, options: { reason: MailDeliveryFailure; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.reason = options.reason;
  }
}

/** Circuit-breaker settings of {@linkcode createSmtpMailer}. */
export interface MailBreakerOptions {
  /** How long the breaker stays open before it lets one trial send through. @default 30000 */
  resetTimeoutMs?: number;
  /** Failure share, in percent of the rolling window, that opens the breaker. @default 50 */
  errorThresholdPercentage?: number;
  /** Sends needed in the rolling window before the breaker may open. @default 3 */
  volumeThreshold?: number;
}

/** Options of {@linkcode createSmtpMailer}. */
export interface SmtpMailerOptions {
  /** `smtp://[user:pass@]host[:port]` (STARTTLS when offered) or `smtps://…` (TLS from the start). */
  url: string;
  /** The `From` header, e.g. `Bulwark <no-reply@example.com>`. */
  from: string;
  logger: Logger;
  /** Upper bound of one send, and of each connection phase. @default 5000 */
  timeoutMs?: number;
  breaker?: MailBreakerOptions;
}

/** Failures are counted over this window; the auth service sends little mail, so it is long. */
const ROLLING_WINDOW_MS = 60_000;

/** One bare addr-spec: no display name, list separator, comment or route (RFC 5322 §3.4.1). */
const BARE_ADDRESS = /^[^\s@,;:<>()[\]"\\]+@[^\s@,;:<>()[\]"\\]+$/;

/** Credentials at least this long are removed from error messages. */
const MIN_SCRUBBED_LENGTH = 4;

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "::1"]);

/**
 * Creates a mailer that delivers through SMTP behind a circuit breaker, so a dead server fails
 * sends fast instead of holding them for `timeoutMs` each.
 *
 * @throws {TypeError} when `url` or `from` is invalid; the message never repeats the URL.
 * @throws {RangeError} when `timeoutMs` is not a positive number.
 */
export function createSmtpMailer(options: SmtpMailerOptions): Mailer {
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`Cannot create mailer: timeoutMs must be positive, got ${timeoutMs}`);
  }
  if (/[\r\n]/.test(options.from)) {
    throw new TypeError("Cannot create mailer: from must not contain CR or LF");
  }
  const server = parseSmtpUrl(options.url);
  // Shorter strings are not scrubbed: they would mangle ordinary words in server replies.
  const secrets = [options.url, server.user, server.pass, server.rawUser, server.rawPass]
    .filter((s) => s.length >= MIN_SCRUBBED_LENGTH);
  const where = `${server.host}:${server.port ?? (server.secure ? 465 : 587)}`;

  const transportOptions = {
    host: server.host,
    ...(server.port === undefined ? {} : { port: server.port }),
    secure: server.secure,
    ...(server.user === "" ? {} : { auth: { user: server.user, pass: server.pass } }),
    // A password must not cross the network in clear: without TLS from the start, demand
    // STARTTLS instead of trusting the server to offer it (RFC 8314 §3; a MITM strips it).
    requireTLS: !server.secure && server.user !== "" && !LOOPBACK_HOSTS.has(server.host),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    dnsTimeout: timeoutMs,
    socketCloseTimeout: timeoutMs,
    // The messages carry text only; no field may make nodemailer read a file or fetch a URL.
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
  } as const;

  // nodemailer is imported on the first send, not at start-up: it is the largest
  // module of the service (~0.1-0.2 s to load) and most processes send little mail.
  type Transporter = ReturnType<typeof nodemailer.createTransport>;
  let transporter: Promise<Transporter> | undefined;
  const transport = (): Promise<Transporter> =>
    transporter ??= import("nodemailer").then(({ default: mailer }) =>
      mailer.createTransport(transportOptions)
    );

  async function deliver(mail: Mail, signal: AbortSignal): Promise<unknown> {
    return await (await transport()).sendMail({
      from: options.from,
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
      // Defence in depth behind the address check: one message, one recipient.
      maxRecipients: 1,
      signal,
    });
  }

  const breaker = new CircuitBreaker(deliver, {
    timeout: timeoutMs,
    resetTimeout: options.breaker?.resetTimeoutMs ?? 30_000,
    errorThresholdPercentage: options.breaker?.errorThresholdPercentage ?? 50,
    volumeThreshold: options.breaker?.volumeThreshold ?? 3,
    rollingCountTimeout: ROLLING_WINDOW_MS,
    rollingCountBuckets: 10,
    rollingPercentilesEnabled: false,
    enableSnapshots: false,
    // A refused recipient means the server is up; it must not open the breaker for everyone.
    errorFilter: (error: unknown) => errorCode(error) === "EENVELOPE",
  });
  const logger = options.logger;
  breaker.on("open", () => logger.warn("mail circuit opened", { smtp: where }));
  breaker.on("halfOpen", () => logger.info("mail circuit half-open", { smtp: where }));
  breaker.on("close", () => logger.info("mail circuit closed", { smtp: where }));

  const inFlight = new Set<AbortController>();
  let closed = false;

  function toDeliveryError(error: unknown): MailDeliveryError {
    const code = errorCode(error);
    if (closed || code === "ESHUTDOWN" || code === "EABORT") {
      return new MailDeliveryError("Cannot send mail: the mailer is closed", {
        reason: "closed",
        cause: error,
      });
    }
    if (code === "EOPENBREAKER") {
      return new MailDeliveryError(
        "Cannot send mail: the circuit is open after repeated failures",
        { reason: "circuit_open", cause: error },
      );
    }
    if (code === "ETIMEDOUT") {
      return new MailDeliveryError(
        `Cannot send mail: the SMTP server did not answer within ${timeoutMs} ms`,
        { reason: "timeout", cause: error },
      );
    }
    const detail = error instanceof Error ? error.message : String(error);
    return new MailDeliveryError(`Cannot send mail: ${scrub(detail, secrets)}`, {
      reason: "failed",
      cause: error,
    });
  }

  return {
    async send(mail) {
      assertSafeHeaders(mail);
      if (closed) throw toDeliveryError(undefined);
      const controller = new AbortController();
      inFlight.add(controller);
      try {
        await breaker.fire(mail, controller.signal);
      } catch (error) {
        // On a breaker timeout nodemailer is still talking; stop it and free the socket.
        controller.abort();
        throw toDeliveryError(error);
      } finally {
        inFlight.delete(controller);
      }
    },
    close() {
      if (closed) return;
      closed = true;
      for (const controller of inFlight) controller.abort();
      breaker.shutdown();
      // A transport that never loaded has nothing to close; its failure was each send's.
      transporter?.then((t) => t.close(), () => {});
    },
    breakerState: () => breaker.opened ? "open" : breaker.halfOpen ? "half_open" : "closed",
  };
}

/** Creates the development mailer: each message becomes one info log line instead of an email. */
export function createLogMailer(logger: Logger): Mailer {
  return {
    send(mail) {
      return new Promise((resolve) => {
        // Same checks as SMTP, so development refuses what production would.
        assertSafeHeaders(mail);
        // `body`, not a name like `token`, so the logger's redaction leaves the text readable.
        logger.info("mail (development: no SMTP_URL)", {
          to: mail.to,
          subject: mail.subject,
          body: mail.text,
        });
        resolve();
      });
    },
    close() {},
  };
}

interface SmtpServer {
  host: string;
  port: number | undefined;
  secure: boolean;
  user: string;
  pass: string;
  rawUser: string;
  rawPass: string;
}

function parseSmtpUrl(url: string): SmtpServer {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    // The parser's message repeats the input, credentials included, so it is not kept.
    if (!(error instanceof TypeError)) throw error;
    throw new TypeError("Cannot create mailer: the SMTP URL is not a valid URL");
  }
  if (parsed.protocol !== "smtp:" && parsed.protocol !== "smtps:") {
    throw new TypeError(
      `Cannot create mailer: the SMTP URL must start with smtp:// or smtps://, not ${parsed.protocol}//`,
    );
  }
  if (parsed.hostname === "") {
    throw new TypeError("Cannot create mailer: the SMTP URL has no host");
  }
  if (
    parsed.search !== "" || parsed.hash !== "" ||
    (parsed.pathname !== "" && parsed.pathname !== "/")
  ) {
    throw new TypeError("Cannot create mailer: the SMTP URL takes no path, query or fragment");
  }
  let user: string;
  let pass: string;
  try {
    user = decodeURIComponent(parsed.username);
    pass = decodeURIComponent(parsed.password);
  } catch (error) {
    if (!(error instanceof URIError)) throw error;
    throw new TypeError(
      "Cannot create mailer: the SMTP URL has a malformed %-escape in its user info",
    );
  }
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: parsed.port === "" ? undefined : Number(parsed.port),
    secure: parsed.protocol === "smtps:",
    user,
    pass,
    rawUser: parsed.username,
    rawPass: parsed.password,
  };
}

function assertSafeHeaders(mail: Mail): void {
  // A CR or LF would end the header and let the rest become new headers (CWE-93).
  for (const field of ["to", "subject"] as const) {
    if (/[\r\n]/.test(mail[field])) {
      throw new TypeError(`Cannot send mail: ${field} must not contain CR or LF`);
    }
  }
  if (!BARE_ADDRESS.test(mail.to)) {
    throw new TypeError("Cannot send mail: to must be a single bare address");
  }
}

function errorCode(error: unknown): unknown {
  return typeof error === "object" && error !== null && "code" in error ? error.code : undefined;
}

function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.replaceAll(secret, "[redacted]");
  return out;
}

/**
 * Production without `SMTP_URL`: mail cannot be sent, and its text (reset
 * links) must not land in production logs, so each message is refused with a
 * {@linkcode MailDeliveryError}, which the caller audits, and one warning
 * names only the subject.
 */
export function createDisabledMailer(logger: Logger): Mailer {
  return {
    send(mail) {
      assertSafeHeaders(mail);
      logger.warn("mail not sent: SMTP_URL is not configured", { subject: mail.subject });
      return Promise.reject(
        new MailDeliveryError("No SMTP server is configured", { reason: "failed" }),
      );
    },
    close() {},
  };
}

/** Options of {@linkcode createMailer}. */
export interface MailerChoice {
  smtpUrl: string | undefined;
  from: string;
  production: boolean;
  logger: Logger;
}

/** SMTP when configured; otherwise the log (development) or nothing at all (production). */
export function createMailer(choice: MailerChoice): Mailer {
  if (choice.smtpUrl !== undefined) {
    return createSmtpMailer({ url: choice.smtpUrl, from: choice.from, logger: choice.logger });
  }
  return choice.production ? createDisabledMailer(choice.logger) : createLogMailer(choice.logger);
}
