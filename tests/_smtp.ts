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

/** A loopback port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Polls until `port` accepts a TCP connection, the process exits, or the start timeout passes. */
async function waitForPort(port: number, exited: Promise<Deno.CommandStatus>): Promise<void> {
  let hasExited = false;
  exited.then(() => hasExited = true);
  const deadline = performance.now() + START_TIMEOUT_MS;
  while (true) {
    if (hasExited) throw new Error("the server process exited");
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch (error) {
      if (!(error instanceof Deno.errors.ConnectionRefused)) throw error;
    }
    if (performance.now() > deadline) {
      throw new Error(`port ${port} did not accept connections within ${START_TIMEOUT_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
