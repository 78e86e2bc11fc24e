import {
  type Entry,
  ERR_INVALID_UNCOMPRESSED_SIZE,
  ERR_UNSAFE_FILENAME,
  type FileEntry,
  Reader,
  ZipReader,
} from "@zip.js/zip.js";
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
  /** Bytes all entries may inflate to, counted while inflating. @default 104857600 (100 MiB) */
  maxTotalBytes?: number;
  /** Largest inflated ÷ compressed size of one entry, counted while inflating. @default 100 */
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
 * Magic bytes of archive and compression formats, at their offsets: an entry whose content
 * starts like one is a nested archive whatever its name.
 */
const ARCHIVE_MAGIC: readonly { offset: number; bytes: readonly number[] }[] = [
  [0x50, 0x4b, 0x03, 0x04], // zip local file header
  [0x50, 0x4b, 0x05, 0x06], // empty zip
  [0x50, 0x4b, 0x07, 0x08], // spanned zip
  [0x1f, 0x8b], // gzip
  [0x1f, 0x9d], // compress (.Z)
  [0x42, 0x5a, 0x68], // bzip2 "BZh"
  [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], // xz
  [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c], // 7z
  [0x52, 0x61, 0x72, 0x21, 0x1a, 0x07], // rar "Rar!"
  [0x28, 0xb5, 0x2f, 0xfd], // zstd
  [0x04, 0x22, 0x4d, 0x18], // lz4
  [0x4c, 0x5a, 0x49, 0x50], // lzip "LZIP"
  [0x4d, 0x53, 0x43, 0x46], // cab "MSCF"
  [0x21, 0x3c, 0x61, 0x72, 0x63, 0x68, 0x3e, 0x0a], // ar / deb "!<arch>\n"
  [0xed, 0xab, 0xee, 0xdb], // rpm
  [0x78, 0x61, 0x72, 0x21], // xar "xar!"
].map((bytes) => ({ offset: 0, bytes })).concat([
  { offset: 257, bytes: [0x75, 0x73, 0x74, 0x61, 0x72] }, // tar "ustar"
]);

/** Bytes of each entry's start kept for {@linkcode ARCHIVE_MAGIC}. */
const MAGIC_BYTES = 262;

/** Names Windows maps to devices, with any extension (and the superscript digits it accepts). */
const WINDOWS_DEVICE = /^(con|prn|aux|nul|conin\$|conout\$|(com|lpt)[1-9\u00b9\u00b2\u00b3])$/i;

/**
 * Reads a zip's central directory and then inflates every entry as a stream (never to disk),
 * refusing archives that could harm whoever unpacks them: too many entries, more bytes once
 * inflated than allowed or than declared, an entry compressed suspiciously well (a zip bomb), a
 * name that escapes the target directory or means something else on another system (zip slip,
 * trailing dots and spaces, Windows device names, backslashes, drive letters, control
 * characters), symbolic links, encrypted entries (cannot be scanned), nested archives (by name
 * and by content) and executables. Sizes the archive declares are checked first, to refuse
 * early, but never trusted: inflation stops at the first byte past a limit.
 *
 * @throws {ArchiveRejectedError} with the first reason found.
 */
export async function inspectZip(
  source: RandomAccessSource,
  limits: ArchiveLimits = {},
): Promise<void> {
  const budget: Required<ArchiveLimits> = {
    maxEntries: limits.maxEntries ?? 1000,
    maxTotalBytes: limits.maxTotalBytes ?? 100 * 1024 * 1024,
    maxRatio: limits.maxRatio ?? 100,
    ratioMinBytes: limits.ratioMinBytes ?? 65_536,
  };
  const reader = new ZipReader(new SourceReader(source), {
    useWebWorkers: false,
    checkSignature: false,
    // Ambiguous archives (prepended data, a central directory that disagrees with itself) are
    // how polyglots and parser-differential tricks get past one reader and not another.
    strictness: "strict",
  });
  try {
    const files = checkDirectory(await readEntries(reader), budget);
    let total = 0;
    for (const entry of files) total += await inflateEntry(entry, budget, total);
  } finally {
    await reader.close();
  }
}

async function readEntries(reader: ZipReader<unknown>): Promise<Entry[]> {
  try {
    return await reader.getEntries();
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
  }
}

/** The checks the central directory allows; returns the file entries to inflate. */
function checkDirectory(entries: Entry[], budget: Required<ArchiveLimits>): FileEntry[] {
  if (entries.length > budget.maxEntries) {
    throw new ArchiveRejectedError(`The archive has more than ${budget.maxEntries} entries`);
  }
  const files: FileEntry[] = [];
  let declared = 0;
  for (const entry of entries) {
    const name = entry.filename;
    const label = shown(name);
    // Check the stored bytes too: a Unicode Path extra field can show zip.js another name.
    const problem = unsafeName(name, entry.directory) ??
      unsafeName(asciiOnly(entry.rawFilename), entry.directory);
    reject(problem !== null, `Entry ${label} has an unsafe path (${problem})`);
    reject(entry.symlink, `Entry ${label} is a symbolic link`);
    reject(entry.encrypted, `Entry ${label} is encrypted and cannot be scanned`);
    // A directory is a name ending in "/" and nothing else: zip.js also trusts the DOS or
    // Unix directory attribute, which unzip tools ignore, so a flagged file must not slip by.
    const directory = name.endsWith("/") && entry.uncompressedSize === 0 &&
      entry.compressedSize === 0;
    reject(entry.directory !== directory, `Entry ${label} is marked as a directory but is not one`);
    // The check above makes zip.js's own flag agree, which also narrows the type.
    if (directory || entry.directory) continue;
    reject(NESTED_ARCHIVE.test(name), `Entry ${label} is a nested archive`);
    reject(EXECUTABLE.test(name) || entry.executable, `Entry ${label} is executable`);
    declared += entry.uncompressedSize;
    reject(declared > budget.maxTotalBytes, expandsPast(budget));
    reject(
      entry.uncompressedSize >= budget.ratioMinBytes &&
        entry.uncompressedSize / Math.max(1, entry.compressedSize) > budget.maxRatio,
      ratioAbove(label, budget),
    );
    files.push(entry);
  }
  return files;
}

/**
 * Inflates one entry into a counting sink that aborts at the first byte past the ratio limit,
 * the archive's remaining budget or the entry's declared size, and looks at its first bytes.
 * Returns the bytes it inflated to.
 */
async function inflateEntry(
  entry: FileEntry,
  budget: Required<ArchiveLimits>,
  inflatedSoFar: number,
): Promise<number> {
  const label = shown(entry.filename);
  const ratioCeiling = Math.max(budget.ratioMinBytes - 1, budget.maxRatio * entry.compressedSize);
  const head = new Uint8Array(MAGIC_BYTES);
  let count = 0;
  let refusal: ArchiveRejectedError | null = null;
  function refuse(reason: string): never {
    refusal = new ArchiveRejectedError(`Archive rejected: ${reason}`);
    throw refusal;
  }
  const sink = new WritableStream<Uint8Array>({
    write(chunk) {
      const before = count;
      if (before < MAGIC_BYTES) head.set(chunk.subarray(0, MAGIC_BYTES - before), before);
      count += chunk.byteLength;
      if (count > ratioCeiling) refuse(ratioAbove(label, budget));
      if (inflatedSoFar + count > budget.maxTotalBytes) refuse(expandsPast(budget));
      if (count > entry.uncompressedSize) refuse(pastDeclared(label));
      // Decided once, as soon as the first bytes are in: a nested archive stops inflation early.
      if (before < MAGIC_BYTES && count >= MAGIC_BYTES && isArchive(head)) {
        refuse(`Entry ${label} is a nested archive`);
      }
    },
  });
  try {
    await entry.getData(sink);
  } catch (error) {
    if (refusal !== null) throw refusal;
    // zip.js stops on its own at the first byte past the declared size.
    if (error instanceof Error && error.message === ERR_INVALID_UNCOMPRESSED_SIZE) {
      throw new ArchiveRejectedError(`Archive rejected: ${pastDeclared(label)}`, { cause: error });
    }
    throw new ArchiveRejectedError(`Archive rejected: Entry ${label} cannot be inflated`, {
      cause: error,
    });
  }
  reject(
    isArchive(head.subarray(0, Math.min(count, MAGIC_BYTES))),
    `Entry ${label} is a nested archive`,
  );
  return count;
}

/** True when `head` starts like an archive or compressed stream. */
function isArchive(head: Uint8Array): boolean {
  return ARCHIVE_MAGIC.some(({ offset, bytes }) =>
    head.byteLength >= offset + bytes.length && bytes.every((b, i) => head[offset + i] === b)
  );
}

function pastDeclared(label: string): string {
  return `Entry ${label} inflates past its declared size`;
}

function expandsPast(budget: Required<ArchiveLimits>): string {
  return `The archive expands to more than ${budget.maxTotalBytes} bytes`;
}

function ratioAbove(label: string, budget: Required<ArchiveLimits>): string {
  return `Entry ${label} has a compression ratio above ${budget.maxRatio}`;
}

/** An entry name as quoted in a refusal: bounded, control and format characters masked. */
function shown(name: string): string {
  return JSON.stringify(name.slice(0, 100).replace(/[\p{Cc}\p{Cf}]/gu, "?"));
}

function reject(condition: boolean, reason: string): void {
  if (condition) throw new ArchiveRejectedError(`Archive rejected: ${reason}`);
}

/** The stored name bytes with every non-ASCII byte as `_`: the ASCII rules apply to every charset. */
function asciiOnly(raw: Uint8Array): string {
  return String.fromCharCode(...Array.from(raw, (b) => (b < 0x80 ? b : 0x5f)));
}

/**
 * Why `name` is unsafe to extract on some system, or `null`: absolute, drive or UNC paths,
 * backslashes and colons (Windows separators, drives and NTFS streams), `.`/`..` or empty
 * components, control characters, characters Windows forbids, components ending in a dot or a
 * space (Windows drops them: `setup.exe.` runs, `.. ` climbs) and Windows device names.
 */
function unsafeName(name: string, directory: boolean): string | null {
  if (name === "") return "empty";
  if (/\p{Cc}/u.test(name)) return "control character";
  if (/[\\:<>"|?*]/.test(name)) return "backslash, colon or a character Windows forbids";
  if (name.startsWith("/")) return "absolute";
  const parts = name.split("/");
  if (directory && parts.at(-1) === "") parts.pop();
  for (const part of parts) {
    if (part === "" || part === "." || part === "..") return "empty, . or .. component";
    if (part.endsWith(".") || part.endsWith(" ")) return "component ends with a dot or space";
    const stem = part.split(".")[0]!.trimEnd();
    if (WINDOWS_DEVICE.test(stem)) return "Windows device name";
  }
  return null;
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
