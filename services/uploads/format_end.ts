import { UnsupportedMediaTypeError } from "../core/errors.ts";

/**
 * Follows a file's own structure as its bytes stream past, so that what a decoder reads ends
 * where the file ends: bytes after the declared end (an appended zip, a script) are how
 * image/archive polyglots pass as images while an unzip tool still extracts them.
 */
export interface FormatEndTracker {
  /**
   * Feeds the next bytes; keeps no more than a few bytes of them.
   *
   * @throws {UnsupportedMediaTypeError} for a structure that does not parse or bytes after the end.
   */
  push(chunk: Uint8Array): void;
  /**
   * Called once the stream has ended.
   *
   * @throws {UnsupportedMediaTypeError} when the declared end was never reached (truncated).
   */
  finish(): void;
}

/**
 * The end tracker of `mime` (file-type's names): PNG to the IEND chunk, JPEG to the EOI marker,
 * GIF to its trailer, WebP to the RIFF size, PDF to its last `%%EOF` (only PDF whitespace after
 * it); `null` for types without one (zip: its own reader refuses appended data).
 */
export function formatEndTracker(mime: string): FormatEndTracker | null {
  switch (mime) {
    case "image/png":
      return new StructureWalker(pngStructure());
    case "image/jpeg":
      return new StructureWalker(jpegStructure());
    case "image/gif":
      return new StructureWalker(gifStructure());
    case "image/webp":
      return new StructureWalker(webpStructure());
    case "application/pdf":
      return pdfEnd();
    default:
      return null;
  }
}

/** The error for bytes after the end. */
function trailingData(): UnsupportedMediaTypeError {
  return new UnsupportedMediaTypeError(
    "The file carries data after the end of its format (a polyglot)",
  );
}

function malformed(): UnsupportedMediaTypeError {
  return new UnsupportedMediaTypeError("The file's content does not match its extension");
}

/**
 * What a structure asks for next: `read` n bytes (small, returned to it), `skip` n bytes (any
 * size, never kept), or `seek` past the next occurrence of one byte value.
 */
type Need = { read: number } | { skip: number } | { seek: number };
type Structure = Generator<Need, void, Uint8Array>;

/** Drives a {@linkcode Structure} generator with streamed chunks. */
class StructureWalker implements FormatEndTracker {
  #structure: Structure;
  #need: Need | null = null;
  #buffer = new Uint8Array(16);
  #filled = 0;

  constructor(structure: Structure) {
    this.#structure = structure;
    this.#advance(new Uint8Array(0));
  }

  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.byteLength) {
      const need = this.#need;
      if (need === null) throw trailingData();
      if ("skip" in need) {
        const n = Math.min(need.skip, chunk.byteLength - at);
        need.skip -= n;
        at += n;
        if (need.skip === 0) this.#advance(new Uint8Array(0));
      } else if ("seek" in need) {
        const found = chunk.indexOf(need.seek, at);
        at = found < 0 ? chunk.byteLength : found + 1;
        if (found >= 0) this.#advance(new Uint8Array(0));
      } else {
        const n = Math.min(need.read - this.#filled, chunk.byteLength - at);
        this.#buffer.set(chunk.subarray(at, at + n), this.#filled);
        this.#filled += n;
        at += n;
        if (this.#filled === need.read) {
          this.#filled = 0;
          this.#advance(this.#buffer.slice(0, need.read));
        }
      }
    }
  }

  finish(): void {
    if (this.#need !== null) throw malformed();
  }

  #advance(value: Uint8Array): void {
    for (;;) {
      const step = this.#structure.next(value);
      if (step.done) {
        this.#need = null;
        return;
      }
      const need = step.value;
      if ("read" in need && need.read > this.#buffer.byteLength) {
        throw new RangeError(`Cannot read ${need.read} bytes at once`);
      }
      // Zero-length requests complete at once, so an empty chunk body never stalls the walk.
      if (("read" in need && need.read === 0) || ("skip" in need && need.skip === 0)) {
        value = new Uint8Array(0);
        continue;
      }
      this.#need = need;
      return;
    }
  }
}

function* expect(bytes: readonly number[]): Structure {
  const got = yield { read: bytes.length };
  if (!bytes.every((b, i) => got[i] === b)) throw malformed();
}

function* readByte(): Generator<Need, number, Uint8Array> {
  return (yield { read: 1 })[0]!;
}

/** PNG (ISO/IEC 15948 §5.3): signature, then length/type/data/CRC chunks up to IEND. */
function* pngStructure(): Structure {
  yield* expect([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  for (;;) {
    const head = yield { read: 8 };
    const length = new DataView(head.buffer, head.byteOffset).getUint32(0);
    if (length > 0x7fffffff) throw malformed();
    yield { skip: length + 4 };
    // "IEND"
    if (head[4] === 0x49 && head[5] === 0x45 && head[6] === 0x4e && head[7] === 0x44) return;
  }
}

/**
 * JPEG (ITU T.81 Annex B): SOI, then marker segments skipped by their length and entropy-coded
 * data scanned for the next marker (`FF00` stuffing and restart markers are data) up to EOI.
 * Bytes between segments are skipped as libjpeg does, so the end is the EOI a decoder sees.
 */
function* jpegStructure(): Structure {
  yield* expect([0xff, 0xd8]);
  for (;;) {
    yield { seek: 0xff };
    let marker = yield* readByte();
    while (marker === 0xff) marker = yield* readByte(); // fill bytes
    // Stuffed zero, restart markers and TEM carry no segment.
    if (marker === 0x00 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) continue;
    if (marker === 0xd9) return; // EOI
    if (marker === 0xd8) throw malformed(); // a second SOI
    const length = yield { read: 2 };
    const size = (length[0]! << 8) | length[1]!;
    if (size < 2) throw malformed();
    yield { skip: size - 2 };
  }
}

/** GIF (GIF89a §17-27): header, screen descriptor, color tables, blocks of sub-blocks, trailer. */
function* gifStructure(): Structure {
  const header = yield { read: 6 };
  const version = String.fromCharCode(...header);
  if (version !== "GIF87a" && version !== "GIF89a") throw malformed();
  const screen = yield { read: 7 };
  if (screen[4]! & 0x80) yield { skip: 3 << ((screen[4]! & 7) + 1) };
  for (;;) {
    const introducer = yield* readByte();
    if (introducer === 0x3b) return; // trailer
    if (introducer === 0x21) {
      yield { skip: 1 }; // label
    } else if (introducer === 0x2c) {
      const image = yield { read: 9 };
      if (image[8]! & 0x80) yield { skip: 3 << ((image[8]! & 7) + 1) };
      yield { skip: 1 }; // LZW minimum code size
    } else {
      throw malformed();
    }
    for (let size = yield* readByte(); size !== 0; size = yield* readByte()) {
      yield { skip: size };
    }
  }
}

/** WebP (RIFF): `RIFF`, a little-endian size counting every byte after it, `WEBP`. */
function* webpStructure(): Structure {
  const head = yield { read: 12 };
  const riff = String.fromCharCode(...head.subarray(0, 4), ...head.subarray(8, 12));
  if (riff !== "RIFFWEBP") throw malformed();
  const size = new DataView(head.buffer, head.byteOffset).getUint32(4, true);
  if (size < 4) throw malformed();
  yield { skip: size - 4 };
}

/** `%%EOF` */
const PDF_EOF = [0x25, 0x25, 0x45, 0x4f, 0x46] as const;

/** PDF whitespace (ISO 32000-1 §7.2.2): NUL, HT, LF, FF, CR, SP. */
function isPdfWhitespace(b: number): boolean {
  return b === 0x00 || b === 0x09 || b === 0x0a || b === 0x0c || b === 0x0d || b === 0x20;
}

/**
 * PDF (ISO 32000-1 §7.5.5): readers start from the last `%%EOF`, and incremental updates append
 * more of them, so the file must end with one followed by whitespace only. Only each chunk's
 * last non-whitespace bytes are looked at, with the stream's last 4 bytes for a split marker.
 */
function pdfEnd(): FormatEndTracker {
  let afterEof = false;
  let last = new Uint8Array(0);
  return {
    push(chunk) {
      let end = chunk.byteLength;
      while (end > 0 && isPdfWhitespace(chunk[end - 1]!)) end--;
      if (end > 0) {
        const tail = chunk.subarray(Math.max(0, end - PDF_EOF.length), end);
        const window = tail.byteLength < PDF_EOF.length ? join(last, tail) : tail;
        afterEof = window.byteLength >= PDF_EOF.length &&
          PDF_EOF.every((b, i) => window[window.byteLength - PDF_EOF.length + i] === b);
      }
      const keep = PDF_EOF.length - 1;
      last = (chunk.byteLength >= keep ? chunk : join(last, chunk)).slice(-keep);
    },
    finish() {
      if (!afterEof) throw trailingData();
    },
  };
}

function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}
