/** Real files for upload tests, built in memory. */
import { deflateSync } from "node:zlib";
import {
  Uint8ArrayReader,
  Uint8ArrayWriter,
  ZipWriter,
  type ZipWriterAddDataOptions,
} from "@zip.js/zip.js";

/** The EICAR anti-virus test file (https://www.eicar.org), harmless by design. */
export const EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The bytes of `parts`, one after the other. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const head = new Uint8Array(8);
  new DataView(head.buffer).setUint32(0, data.byteLength);
  head.set(new TextEncoder().encode(type), 4);
  const crc = new Uint8Array(4);
  new DataView(crc.buffer).setUint32(0, crc32(concat(head.subarray(4), data)));
  return concat(head, data, crc);
}

/**
 * A valid PNG of `width`×`height` random grey pixels; `minBytes` pads it with a private
 * ancillary chunk so tests can make files of a given size.
 */
export function png(
  options: { width?: number; height?: number; minBytes?: number } = {},
): Uint8Array {
  const width = options.width ?? 2;
  const height = options.height ?? 2;
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, 0, 0, 0, 0], 8);
  const raw = new Uint8Array((width + 1) * height);
  crypto.getRandomValues(raw.subarray(0, Math.min(raw.byteLength, 65536)));
  for (let y = 0; y < height; y++) raw[y * (width + 1)] = 0;
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", new Uint8Array(deflateSync(raw))),
  ];
  const end = pngChunk("IEND", new Uint8Array(0));
  const size = parts.reduce((n, p) => n + p.byteLength, 0) + end.byteLength;
  if (options.minBytes !== undefined && options.minBytes > size + 12) {
    parts.push(pngChunk("prVt", new Uint8Array(options.minBytes - size - 12)));
  }
  return concat(...parts, end);
}

/** A minimal baseline JPEG header (SOI + JFIF APP0) followed by filler and EOI. */
export function jpeg(): Uint8Array {
  return concat(
    new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]),
    new TextEncoder().encode("JFIF\0"),
    new Uint8Array([1, 1, 0, 0, 1, 0, 1, 0, 0]),
    new Uint8Array(64),
    new Uint8Array([0xff, 0xd9]),
  );
}

/** A 1×1 GIF89a with a global color table, a graphic control extension and one image. */
export function gif(): Uint8Array {
  return concat(
    new TextEncoder().encode("GIF89a"),
    new Uint8Array([1, 0, 1, 0, 0x80, 0, 0]), // 1×1, global color table of 2 entries
    new Uint8Array([0, 0, 0, 0xff, 0xff, 0xff]),
    new Uint8Array([0x21, 0xf9, 4, 1, 0, 0, 0, 0]), // graphic control extension
    new Uint8Array([0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0]), // image descriptor
    new Uint8Array([2, 2, 0x44, 0x01, 0]), // LZW minimum code size, one sub-block, terminator
    new Uint8Array([0x3b]), // trailer
  );
}

/** A 1×1 lossless WebP (RIFF container with one VP8L chunk). */
export function webp(): Uint8Array {
  const vp8l = [0x2f, 0, 0, 0, 0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07];
  const body = concat(
    new TextEncoder().encode("WEBPVP8L"),
    new Uint8Array([vp8l.length, 0, 0, 0]),
    new Uint8Array(vp8l),
    new Uint8Array(1), // RIFF pads chunks to an even size
  );
  const head = concat(new TextEncoder().encode("RIFF"), new Uint8Array(4));
  new DataView(head.buffer).setUint32(4, body.byteLength, true);
  return concat(head, body);
}

/** A one-page PDF. */
export function pdf(): Uint8Array {
  return new TextEncoder().encode(
    "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n" +
      "2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n" +
      "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >> endobj\n" +
      "trailer << /Root 1 0 R >>\n%%EOF\n",
  );
}

/** One zip entry: name, content and optional zip.js options (e.g. a Unix mode). */
export interface ZipEntry {
  name: string;
  data: Uint8Array | string;
  options?: ZipWriterAddDataOptions;
}

/** A real zip archive (deflate) of `entries`. */
export async function zip(entries: readonly ZipEntry[]): Promise<Uint8Array> {
  const writer = new ZipWriter(new Uint8ArrayWriter(), { useWebWorkers: false });
  for (const entry of entries) {
    const data = typeof entry.data === "string" ? new TextEncoder().encode(entry.data) : entry.data;
    await writer.add(entry.name, new Uint8ArrayReader(data), entry.options);
  }
  return await writer.close();
}

/** A streamed multipart upload and a count of the bytes the server pulled from it. */
export interface StreamedUpload {
  body: ReadableStream<Uint8Array>;
  contentType: string;
  pulled(): number;
}

/**
 * A multipart body as a stream of a `size`-byte PNG (a private chunk of zeros pads it, so the
 * file ends with IEND like a real one), counting what is pulled.
 */
export function streamedUpload(size: number, filename = "big.png"): StreamedUpload {
  const boundary = "----bulwark" + crypto.randomUUID();
  const head = new TextEncoder().encode(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n` +
      `Content-Type: image/png\r\n\r\n`,
  );
  const tail = new TextEncoder().encode(`\r\n--${boundary}--\r\n`);
  const image = png({ width: 1, height: 1 });
  const iend = image.subarray(image.byteLength - 12);
  // Signature, IHDR and IDAT, then the header of a private chunk holding the padding.
  const padding = Math.max(0, size - image.byteLength - 12);
  const first = concat(image.subarray(0, image.byteLength - 12), new Uint8Array(8));
  new DataView(first.buffer).setUint32(first.byteLength - 8, padding);
  first.set(new TextEncoder().encode("prVt"), first.byteLength - 4);
  const last = concat(new Uint8Array(4), iend); // the padding's CRC (unchecked) and IEND
  const chunk = 64 * 1024;
  let sent = 0;
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === 0) {
        controller.enqueue(head);
        controller.enqueue(first);
        sent = first.byteLength;
        pulled += head.byteLength + first.byteLength;
        return;
      }
      if (sent >= size) {
        controller.enqueue(tail);
        controller.close();
        return;
      }
      const n = Math.min(chunk, size - last.byteLength - sent);
      const bytes = n > 0 ? new Uint8Array(n) : last;
      sent += bytes.byteLength;
      pulled += bytes.byteLength;
      controller.enqueue(bytes);
    },
  }, { highWaterMark: 0 });
  return {
    body,
    contentType: `multipart/form-data; boundary=${boundary}`,
    pulled: () => pulled,
  };
}
