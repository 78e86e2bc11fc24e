// @ts-types="@types/opossum"
import CircuitBreaker from "opossum";
import { ScannerUnavailableError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";

/** The verdict of one scan. */
export type ScanResult = { clean: true } | { clean: false; signature: string };

/** Scans a byte stream for malware. */
export interface VirusScanner {
  /**
   * Reads `stream` to the end (or cancels it on failure) and returns the verdict.
   *
   * @throws {ScannerUnavailableError} when no verdict could be had: fail closed.
   */
  scan(stream: ReadableStream<Uint8Array>): Promise<ScanResult>;
  /** The circuit breaker's state, for metrics. */
  breakerState?(): "closed" | "half_open" | "open";
}

/** A scanner that holds a connection pool or timers and must be closed. */
export interface ClosableScanner extends VirusScanner {
  /** Aborts scans in flight and releases the breaker's timers. */
  close(): void;
}

/** Circuit-breaker settings of {@linkcode createClamdScanner}. */
export interface ScanBreakerOptions {
  /** How long the breaker stays open before it lets one trial scan through. @default 10000 */
  resetTimeoutMs?: number;
  /** Failure share, in percent of the rolling window, that opens the breaker. @default 50 */
  errorThresholdPercentage?: number;
  /** Scans needed in the rolling window before the breaker may open. @default 5 */
  volumeThreshold?: number;
}

/** Options of {@linkcode createClamdScanner}. */
export interface ClamdScannerOptions {
  /** `host:port` (TCP, `[v6]:port` for IPv6) or an absolute Unix socket path. */
  address: string;
  logger: Logger;
  /** Upper bound of one whole scan (connect, stream, verdict). @default 10000 */
  timeoutMs?: number;
  breaker?: ScanBreakerOptions;
}

/** Longest reply read from clamd; a verdict line is far shorter. */
const MAX_REPLY_BYTES = 4096;

/** clamd takes chunks of any size up to StreamMaxLength; smaller frames keep memory flat. */
const MAX_FRAME_BYTES = 64 * 1024;

/**
 * Creates a clamd client (the `zINSTREAM` command of clamd(8)) behind a circuit breaker with a
 * timeout, so a dead or hung clamd fails scans fast with 503 instead of holding requests.
 *
 * @throws {TypeError} when `address` is neither `host:port` nor an absolute socket path.
 * @throws {RangeError} when `timeoutMs` is not positive.
 */
export function createClamdScanner(options: ClamdScannerOptions): ClosableScanner {
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`Cannot create scanner: timeoutMs must be positive, got ${timeoutMs}`);
  }
  const target = parseAddress(options.address);
  const { logger } = options;

  async function instream(
    stream: ReadableStream<Uint8Array>,
    signal: AbortSignal,
  ): Promise<ScanResult> {
    const conn = target.transport === "unix"
      ? await Deno.connect({ transport: "unix", path: target.path })
      : await Deno.connect({ hostname: target.hostname, port: target.port });
    const reader = stream.getReader();
    // A timeout aborts here: closing the socket fails the pending read or write at once.
    const onAbort = () => closeQuietly(conn);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await writeAll(conn, new TextEncoder().encode("zINSTREAM\0"));
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        for (let at = 0; at < value.byteLength; at += MAX_FRAME_BYTES) {
          const part = value.subarray(at, at + MAX_FRAME_BYTES);
          await writeAll(conn, frameHeader(part.byteLength));
          await writeAll(conn, part);
        }
      }
      await writeAll(conn, frameHeader(0));
      return parseReply(await readReply(conn));
    } catch (error) {
      await reader.cancel(error).catch((cancelError: unknown) => {
        // The scan already failed; a failed cancel adds nothing the caller could act on.
        logger.debug("scan stream cancel failed", { error: cancelError });
      });
      throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
      reader.releaseLock();
      closeQuietly(conn);
    }
  }

  const breaker = new CircuitBreaker(instream, {
    timeout: timeoutMs,
    resetTimeout: options.breaker?.resetTimeoutMs ?? 10_000,
    errorThresholdPercentage: options.breaker?.errorThresholdPercentage ?? 50,
    volumeThreshold: options.breaker?.volumeThreshold ?? 5,
    rollingCountTimeout: 60_000,
    rollingCountBuckets: 10,
    rollingPercentilesEnabled: false,
    enableSnapshots: false,
  });
  breaker.on("open", () => logger.warn("scanner circuit opened"));
  breaker.on("halfOpen", () => logger.info("scanner circuit half-open"));
  breaker.on("close", () => logger.info("scanner circuit closed"));

  const inFlight = new Set<AbortController>();
  let closed = false;

  return {
    async scan(stream) {
      if (closed) {
        await stream.cancel();
        throw new ScannerUnavailableError("The virus scanner is unavailable");
      }
      const controller = new AbortController();
      inFlight.add(controller);
      try {
        return await breaker.fire(stream, controller.signal);
      } catch (error) {
        // On a breaker timeout the scan is still running; stop it and free the socket.
        controller.abort();
        if (errorCode(error) === "EOPENBREAKER") {
          // The stream was never read; release what backs it.
          await stream.cancel().catch((cancelError: unknown) => {
            logger.debug("scan stream cancel failed", { error: cancelError });
          });
        }
        // The address and the cause go to the log only: responses name no internals.
        logger.warn("virus scan failed", { reason: String(errorCode(error) ?? "error"), error });
        throw new ScannerUnavailableError("The virus scanner is unavailable", { cause: error });
      } finally {
        inFlight.delete(controller);
      }
    },
    close() {
      if (closed) return;
      closed = true;
      for (const controller of inFlight) controller.abort();
      breaker.shutdown();
    },
    breakerState: () => breaker.opened ? "open" : breaker.halfOpen ? "half_open" : "closed",
  };
}

type Target =
  | { transport: "unix"; path: string }
  | { transport: "tcp"; hostname: string; port: number };

function parseAddress(address: string): Target {
  if (address.startsWith("/")) return { transport: "unix", path: address };
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  if (match === null || port < 1 || port > 65535) {
    throw new TypeError("Cannot create scanner: address must be host:port or a socket path");
  }
  return { transport: "tcp", hostname: match[1] ?? match[2] ?? "", port };
}

function frameHeader(length: number): Uint8Array {
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, length, false);
  return header;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.byteLength) written += await conn.write(bytes.subarray(written));
}

async function readReply(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(MAX_REPLY_BYTES);
  let length = 0;
  while (length < buffer.byteLength) {
    const n = await conn.read(buffer.subarray(length));
    if (n === null) break;
    length += n;
    if (buffer.subarray(0, length).includes(0)) break;
  }
  return new TextDecoder().decode(buffer.subarray(0, length)).replace(/\0[\s\S]*$/, "").trim();
}

function parseReply(reply: string): ScanResult {
  if (reply === "stream: OK") return { clean: true };
  const found = /^stream: (.+) FOUND$/.exec(reply);
  if (found !== null) return { clean: false, signature: found[1]!.slice(0, 200) };
  // "... ERROR" (size limit, unreadable data) or an empty reply: no verdict, so fail closed.
  throw new Error(`clamd gave no verdict: ${reply.slice(0, 200)}`);
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch (error) {
    // Closing twice (timeout, then finally) is expected; anything else is a real fault.
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}

function errorCode(error: unknown): unknown {
  return typeof error === "object" && error !== null && "code" in error ? error.code : undefined;
}
