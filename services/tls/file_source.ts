/**
 * `TLS_CERT_FILE`/`TLS_KEY_FILE`: loads the pair at start-up and again when either file changes
 * (or on `SIGHUP`, wired by the serve command). A broken pair is refused with a log line and the
 * pair in service stays.
 *
 * @module
 */
import type { Logger } from "../core/logger.ts";
import type { CertificateStatus, TlsService } from "./tls.ts";

/** Dependencies of {@linkcode createFileCertificateSource}. */
export interface FileCertificateSourceDeps {
  certFile: string;
  keyFile: string;
  tls: TlsService;
  logger: Logger;
  /** Quiet time after the last file event before reloading (writers replace files in steps). */
  debounceMs?: number;
}

/** The file-backed certificate source. */
export interface FileCertificateSource {
  /**
   * Reads and installs the pair; start-up uses it and fails on a bad pair.
   *
   * @throws {TlsIdentityError} or a file error
   */
  load(): Promise<CertificateStatus>;
  /** Like {@linkcode load} but never throws: a refused pair is logged and the old one kept. */
  reload(reason: string): Promise<boolean>;
  /** Reloads when either file (or its folder entry) changes, until disposed. */
  watch(): Disposable;
}

/** Creates the file-backed source. */
export function createFileCertificateSource(
  deps: FileCertificateSourceDeps,
): FileCertificateSource {
  const { tls, logger } = deps;
  const debounceMs = deps.debounceMs ?? 250;

  async function load(): Promise<CertificateStatus> {
    const [cert, key] = await Promise.all([
      Deno.readTextFile(deps.certFile),
      Deno.readTextFile(deps.keyFile),
    ]);
    return tls.install({ cert, key }, "file");
  }

  async function reload(reason: string): Promise<boolean> {
    try {
      await load();
      logger.info("tls certificate reloaded", { reason, cert_file: deps.certFile });
      return true;
    } catch (error) {
      // Every Error here means "this pair cannot be served" (missing file, parse, mismatch, weak).
      if (!(error instanceof Error)) throw error;
      logger.error("tls certificate reload refused; keeping the certificate in service", {
        reason,
        cert_file: deps.certFile,
        key_file: deps.keyFile,
        // The message names the problem (mismatch, weak key, parse error); never key material.
        problem: error.message,
      });
      return false;
    }
  }

  function watch(): Disposable {
    // Watch the folders: editors and cert-manager style tools replace files by rename, which a
    // watch on the file itself would lose.
    const dirs = [...new Set([deps.certFile, deps.keyFile].map(parentDir))];
    const names = new Set([deps.certFile, deps.keyFile].map(baseName));
    const watcher = Deno.watchFs(dirs, { recursive: false });
    let timer: ReturnType<typeof setTimeout> | undefined;
    (async () => {
      for await (const event of watcher) {
        if (!event.paths.some((p) => names.has(baseName(p)))) continue;
        clearTimeout(timer);
        timer = setTimeout(() => void reload("file changed"), debounceMs);
      }
    })().catch((error) => {
      logger.error("tls certificate watch stopped", { problem: String(error) });
    });
    return {
      [Symbol.dispose]() {
        clearTimeout(timer);
        watcher.close();
      },
    };
  }

  return { load, reload, watch };
}

function parentDir(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
