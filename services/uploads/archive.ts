import { type Entry, ERR_UNSAFE_FILENAME, Reader, ZipReader } from "@zip.js/zip.js";
import { ArchiveRejectedError } from "../core/errors.ts";

/** Random access to the bytes of an archive, so only its central directory is read. */
export interface RandomAccessSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Limits of {@linkcode inspectZip} (OWASP File Upload Cheat Sheet, "zip bombs"). */
export interface ArchiveLimits {
  /** @default 1000 */
  maxEntries?: number;
  /** Sum of the declared uncompressed sizes. @default 104857600 (100 MiB) */
  maxTotalBytes?: number;
  /** Largest uncompressed ÷ compressed size of one entry. @default 100 */
  maxRatio?: number;
  /** Entries smaller than this skip the ratio check: tiny files compress well and harm nobody. @default 65536 */
  ratioMinBytes?: number;
}

/** Entry names of archives inside the archive: they hide content from these checks. */
const NESTED_ARCHIVE =
  /\.(zip|zipx|jar|war|ear|apk|aar|rar|7z|gz|tgz|bz2|tbz2?|xz|txz|zst|lz|lzma|z|tar|cab|iso|dmg|arj|lzh|cpio|rpm|deb|xpi|crx)$/i;

/** Entry names that run when opened on common systems. */
const EXECUTABLE =
  /\.(exe|dll|com|bat|cmd|scr|pif|msi|msp|msc|cpl|sys|drv|ocx|ps1|psm1|psd1|vbs|vbe|js|jse|mjs|cjs|wsf|wsh|hta|lnk|reg|inf|sh|bash|zsh|csh|ksh|command|app|elf|so|dylib|run|py|pyc|pl|rb|php|phtml|jsp|asp|aspx|cgi|class|svg|html?|xhtml|shtml|xht)$/i;

/**
 * Reads a zip's central directory (never extracting anything) and refuses archives that could
 * harm whoever unpacks them: too many entries, too large once expanded, an entry compressed
 * suspiciously well (a zip bomb), a path that escapes the target directory (zip slip: `..`,
 * absolute and drive paths), symbolic links, encrypted entries (cannot be scanned), nested
 * archives and executables.
 *
 * @throws {ArchiveRejectedError} with the first reason found.
 */
export async function inspectZip(
  source: RandomAccessSource,
  limits: ArchiveLimits = {},
): Promise<void> {
  const maxEntries = limits.maxEntries ?? 1000;
  const maxTotalBytes = limits.maxTotalBytes ?? 100 * 1024 * 1024;
  const maxRatio = limits.maxRatio ?? 100;
  const ratioMinBytes = limits.ratioMinBytes ?? 65_536;
  const reader = new ZipReader(new SourceReader(source), {
    useWebWorkers: false,
    checkSignature: false,
    // Ambiguous archives (prepended data, a central directory that disagrees with itself) are
    // how polyglots and parser-differential tricks get past one reader and not another.
    strictness: "strict",
  });
  let entries: Entry[];
  try {
    entries = await reader.getEntries();
  } catch (error) {
    if (error instanceof Error && error.message === ERR_UNSAFE_FILENAME) {
      // zip.js refuses climbing and absolute names itself; report it like our own check.
      const name = "filename" in error ? String(error.filename) : "";
      throw new ArchiveRejectedError(`Archive rejected: Entry ${shown(name)} has an unsafe path`, {
        cause: error,
      });
    }
    // Any other parse failure is the archive's fault; the library's message stays in `cause`.
    throw new ArchiveRejectedError("The archive is not a readable zip file", { cause: error });
  } finally {
    await reader.close();
  }
  if (entries.length > maxEntries) {
    throw new ArchiveRejectedError(`The archive has more than ${maxEntries} entries`);
  }
  let total = 0;
  for (const entry of entries) {
    const name = entry.filename;
    const label = shown(name);
    reject(unsafePath(name), `Entry ${label} has an unsafe path`);
    reject(entry.symlink, `Entry ${label} is a symbolic link`);
    reject(entry.encrypted, `Entry ${label} is encrypted and cannot be scanned`);
    if (entry.directory) continue;
    reject(NESTED_ARCHIVE.test(name), `Entry ${label} is a nested archive`);
    reject(EXECUTABLE.test(name) || entry.executable, `Entry ${label} is executable`);
    total += entry.uncompressedSize;
    reject(total > maxTotalBytes, `The archive expands to more than ${maxTotalBytes} bytes`);
    const ratio = entry.uncompressedSize / Math.max(1, entry.compressedSize);
    reject(
      entry.uncompressedSize >= ratioMinBytes && ratio > maxRatio,
      `Entry ${label} has a compression ratio above ${maxRatio}`,
    );
  }
}

/** An entry name as quoted in a refusal: bounded, control and format characters masked. */
function shown(name: string): string {
  return JSON.stringify(name.slice(0, 100).replace(/[\p{Cc}\p{Cf}]/gu, "?"));
}

function reject(condition: boolean, reason: string): void {
  if (condition) throw new ArchiveRejectedError(`Archive rejected: ${reason}`);
}

/** True for names that are absolute, carry a drive or UNC prefix, or climb with `..`. */
function unsafePath(name: string): boolean {
  if (name === "" || /\p{Cc}/u.test(name)) return true;
  const normal = name.replaceAll("\\", "/");
  if (normal.startsWith("/") || /^[A-Za-z]:/.test(normal)) return true;
  return normal.split("/").some((part) => part === ".." || /^[A-Za-z]:$/.test(part));
}

/** Adapts a {@linkcode RandomAccessSource} to zip.js. */
class SourceReader extends Reader<RandomAccessSource> {
  #source: RandomAccessSource;
  constructor(source: RandomAccessSource) {
    super(source);
    this.#source = source;
    this.size = source.size;
  }
  override readUint8Array(index: number, length: number): Promise<Uint8Array> {
    return this.#source.read(index, length);
  }
}
