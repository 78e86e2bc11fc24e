import { createSmtpMailer, type Mailer } from "../../services/mail/mailer.ts";
import { freePort } from "./net.ts";
import { waitFor } from "./wait.ts";

/** The interpreter that has Debian's `python3-aiosmtpd`; the `python3` on PATH may be a shim without it. */
const PYTHON = "/usr/bin/python3";

/** How long a sink may take to accept connections before the start counts as failed. */
const START_TIMEOUT_MS = 10_000;

/** A real SMTP server (aiosmtpd) that stores every message it accepts; `await using` stops it. */
export interface SmtpSink extends AsyncDisposable {
  /** The loopback port it listens on. */
  readonly port: number;
  /** The server's self-signed certificate (PEM, for `localhost` and 127.0.0.1) when `tls` is set. */
  readonly certificate: string | undefined;
  /** The raw RFC 5322 messages received so far, oldest first. */
  messages(): Promise<string[]>;
  /** Kills the server and removes its mail directory. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startSmtpSink}. */
export interface SmtpSinkOptions {
  /** Port to listen on. @default a free port */
  port?: number;
  /**
   * `"starttls"` offers and requires STARTTLS, `"smtps"` speaks TLS from the first byte; both
   * with a fresh self-signed certificate, which needs `openssl` (see {@linkcode opensslAvailable}).
   * @default no TLS
   */
  tls?: "starttls" | "smtps";
}

/** True when `command args…` runs and exits 0; a missing binary is simply false. */
async function commandSucceeds(command: string, args: string[]): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(command, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch (error) {
    // A missing binary means "not available", which is the answer, not a failure.
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Reports whether {@linkcode startSmtpSink} can run here (`/usr/bin/python3` with aiosmtpd). */
export function smtpAvailable(): Promise<boolean> {
  return commandSucceeds(PYTHON, ["-c", "import aiosmtpd"]);
}

/** Reports whether `openssl` is on PATH, which the `tls` option of {@linkcode startSmtpSink} needs. */
export function opensslAvailable(): Promise<boolean> {
  return commandSucceeds("openssl", ["version"]);
}

/**
 * Starts aiosmtpd on 127.0.0.1 with a maildir behind it, and resolves once the port accepts
 * TCP connections.
 */
export async function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const port = options.port ?? freePort();
  const dir = await Deno.makeTempDir({ prefix: "bulwark_smtp_" });
  // Python's Maildir creates new/cur/tmp only when the directory does not exist yet.
  const maildir = `${dir}/maildir`;
  let certificate: string | undefined;
  const tlsArgs: string[] = [];
  if (options.tls !== undefined) {
    try {
      certificate = await selfSignedCertificate(dir);
    } catch (error) {
      await Deno.remove(dir, { recursive: true });
      throw error;
    }
    const flag = options.tls === "smtps" ? "--smtps" : "--tls";
    tlsArgs.push(`${flag}cert`, `${dir}/cert.pem`, `${flag}key`, `${dir}/key.pem`);
  }
  const child = new Deno.Command(PYTHON, {
    args: [
      "-m",
      "aiosmtpd",
      "-n",
      "-l",
      `127.0.0.1:${port}`,
      ...tlsArgs,
      "-c",
      "aiosmtpd.handlers.Mailbox",
      maildir,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Drained continuously so a chatty server never blocks on a full pipe; shown if start fails.
  const stderr = new Response(child.stderr).text();
  let stopped = false;

  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGTERM");
    } catch (error) {
      // The process may already have exited (a failed start); its status is awaited below.
      if (!(error instanceof TypeError)) throw error;
    }
    await child.status;
    await stderr;
    await Deno.remove(dir, { recursive: true });
  }

  try {
    await waitForPort(port, child.status);
  } catch (error) {
    await stop();
    throw new Error(`Cannot start SMTP sink on port ${port}: ${await stderr}`, { cause: error });
  }

  return {
    port,
    certificate,
    async messages() {
      const files: { path: string; mtime: number; name: string }[] = [];
      for (const sub of ["new", "cur"]) {
        for await (const entry of Deno.readDir(`${maildir}/${sub}`)) {
          if (!entry.isFile) continue;
          const path = `${maildir}/${sub}/${entry.name}`;
          const { mtime } = await Deno.stat(path);
          files.push({ path, name: entry.name, mtime: mtime?.getTime() ?? 0 });
        }
      }
      files.sort((a, b) => a.mtime - b.mtime || a.name.localeCompare(b.name));
      return await Promise.all(files.map((f) => Deno.readTextFile(f.path)));
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** Writes `cert.pem` and `key.pem` for localhost into `dir` and returns the certificate. */
async function selfSignedCertificate(dir: string): Promise<string> {
  const { success, stderr } = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout",
      `${dir}/key.pem`,
      "-out",
      `${dir}/cert.pem`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(`Cannot create a test certificate: ${new TextDecoder().decode(stderr)}`);
  }
  return await Deno.readTextFile(`${dir}/cert.pem`);
}

/** Waits until `port` accepts a TCP connection; fails at once if the process exits first. */
async function waitForPort(port: number, exited: Promise<Deno.CommandStatus>): Promise<void> {
  let hasExited = false;
  exited.then(() => hasExited = true);
  await waitFor(`port ${port} to accept connections`, async () => {
    if (hasExited) throw new Error("the server process exited");
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return true;
    } catch (error) {
      if (!(error instanceof Deno.errors.ConnectionRefused)) throw error;
      return false;
    }
  }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 25 });
}

/** An SMTP mailer that `using` closes. */
export function smtpMailer(options: Parameters<typeof createSmtpMailer>[0]): Mailer & Disposable {
  const mailer = createSmtpMailer(options);
  return Object.assign(mailer, { [Symbol.dispose]: () => mailer.close() });
}

/**
 * A scripted SMTP peer for failure modes a real server will not produce on demand; for one that
 * never answers, see `silentServer()` in `net.ts`.
 */
export interface FakeSmtp extends AsyncDisposable {
  readonly port: number;
  /** Every command line the client sent. */
  readonly received: string[];
}

/** Options of {@linkcode startFakeSmtp}. */
export interface FakeSmtpOptions {
  /** @default "127.0.0.1" */
  hostname?: string;
  /** Advertise AUTH (without STARTTLS) in the EHLO reply. @default false */
  authOffered?: boolean;
  /** Overrides the reply to a command; `undefined` falls back to the happy path. */
  reply?: (line: string) => string | undefined;
}

/** Starts a {@linkcode FakeSmtp} on a free port; `await using` stops it. */
export function startFakeSmtp(options: FakeSmtpOptions = {}): FakeSmtp {
  const listener = Deno.listen({ hostname: options.hostname ?? "127.0.0.1", port: 0 });
  const received: string[] = [];
  const open = new Set<Deno.Conn>();
  const served: Promise<void>[] = [];
  const encoder = new TextEncoder();

  /** The reply to one line, or `null` for a line of message data. */
  function answer(line: string, session: { inData: boolean }): string | null {
    if (session.inData) {
      if (line !== ".") return null;
      session.inData = false;
      return "250 2.0.0 queued";
    }
    const custom = options.reply?.(line);
    if (custom !== undefined) return custom;
    const verb = line.slice(0, 4).toUpperCase();
    if (verb === "EHLO") {
      return options.authOffered ? "250-fake.test\r\n250 AUTH PLAIN LOGIN" : "250 fake.test";
    }
    if (verb === "DATA") {
      session.inData = true;
      return "354 go ahead";
    }
    if (verb === "QUIT") return "221 bye";
    if (["MAIL", "RCPT", "RSET", "NOOP"].includes(verb)) return "250 ok";
    return "502 5.5.1 command not implemented";
  }

  async function serve(conn: Deno.Conn): Promise<void> {
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(4096);
    const session = { inData: false };
    let pending = "";
    try {
      await conn.write(encoder.encode("220 fake.test ESMTP\r\n"));
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) return;
        pending += decoder.decode(buffer.subarray(0, n), { stream: true });
        let end: number;
        while ((end = pending.indexOf("\r\n")) >= 0) {
          const line = pending.slice(0, end);
          pending = pending.slice(end + 2);
          if (!session.inData) received.push(line);
          const reply = answer(line, session);
          if (reply !== null) await conn.write(encoder.encode(`${reply}\r\n`));
          if (/^QUIT/i.test(line)) return;
        }
      }
    } catch (error) {
      // The client hanging up mid-conversation, or close() below, ends the session normally.
      if (
        !(error instanceof Deno.errors.BadResource ||
          error instanceof Deno.errors.ConnectionReset ||
          error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.Interrupted)
      ) {
        throw error;
      }
    } finally {
      if (open.delete(conn)) conn.close();
    }
  }

  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        open.add(conn);
        served.push(serve(conn));
      }
    } catch (error) {
      // close() below stops the accept loop this way.
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
  })();

  return {
    port: (listener.addr as Deno.NetAddr).port,
    received,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of open) {
        open.delete(conn);
        conn.close();
      }
      await accepting;
      await Promise.all(served);
    },
  };
}
