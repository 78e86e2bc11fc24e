// @ts-types="@types/busboy"
import busboy from "busboy";
import { Readable } from "node:stream";
import { pipeline } from "node:stream";
import {
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  ValidationError,
} from "../core/errors.ts";

/** The one file of an upload form, still streaming. */
export interface UploadedFile {
  /** The client's filename, untrusted and unsanitized. */
  filename: string;
  /**
   * The file's bytes as they arrive. Errors with {@linkcode PayloadTooLargeError} once the file or
   * the whole body passes its limit; cancelling it stops reading the request.
   */
  stream: ReadableStream<Uint8Array>;
}

/** Options of {@linkcode streamUploadField}. */
export interface MultipartOptions {
  /** The form field holding the file. */
  field: string;
  /** Largest file in bytes. */
  maxFileBytes: number;
  /** Largest whole body; the file plus room for boundaries, part headers and small fields. */
  maxBodyBytes: number;
}

const MULTIPART = /^multipart\/form-data\s*;/i;

/** Bytes buffered between the parser and the consumer before the parser is paused. */
const HIGH_WATER_BYTES = 64 * 1024;

/**
 * Parses a `multipart/form-data` body as it streams (busboy) and resolves with the `field`
 * file as soon as its headers arrive; nothing is buffered beyond one small window, and the
 * body is counted as it is read so an oversized one is cut off at the limit.
 *
 * @throws {UnsupportedMediaTypeError} when the body is not `multipart/form-data`.
 * @throws {ValidationError} when the body is malformed or has no `field` file.
 * @throws {PayloadTooLargeError} when the body passes `maxBodyBytes` before the file starts.
 */
export function streamUploadField(
  body: ReadableStream<Uint8Array> | null,
  contentType: string | undefined,
  options: MultipartOptions,
): Promise<UploadedFile> {
  if (contentType === undefined || !MULTIPART.test(contentType)) {
    return Promise.reject(new UnsupportedMediaTypeError("Expected a multipart/form-data body"));
  }
  if (body === null) {
    return Promise.reject(new ValidationError("A file is required", { errors: [fieldError()] }));
  }
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { "content-type": contentType },
      defParamCharset: "utf8",
      limits: {
        files: 1,
        // busboy reports "limit" on reaching fileSize, so one more byte means "exceeded".
        fileSize: options.maxFileBytes + 1,
        fields: 10,
        fieldSize: 1024,
        parts: 12,
        headerPairs: 16,
      },
    });
  } catch (error) {
    // busboy throws on a missing or malformed boundary: the client's fault.
    if (!(error instanceof Error)) throw error;
    return Promise.reject(new ValidationError("Malformed multipart body", { cause: error }));
  }

  let received = 0;
  const counted = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        received += chunk.byteLength;
        // Counted before the parser sees the bytes: nothing past the limit is ever processed.
        if (received > options.maxBodyBytes) {
          controller.error(tooLarge(options.maxFileBytes));
        } else {
          controller.enqueue(chunk);
        }
      },
    }),
  );
  const source = Readable.fromWeb(counted as import("node:stream/web").ReadableStream);

  return new Promise<UploadedFile>((resolve, reject) => {
    let file: { controller: ReadableStreamDefaultController<Uint8Array>; open: boolean } | null =
      null;
    function fail(error: unknown): void {
      if (!(error instanceof PayloadTooLargeError || error instanceof ValidationError)) {
        error = new ValidationError("Malformed or incomplete multipart body", { cause: error });
      }
      if (file === null) reject(error);
      else if (file.open) {
        file.open = false;
        file.controller.error(error);
      }
    }
    parser.on("file", (name, stream, info) => {
      // A destroyed request also destroys each part's stream, which then reports its own error.
      stream.on("error", fail);
      if (name !== options.field || file !== null) {
        stream.resume();
        return;
      }
      const fileStream = new ReadableStream<Uint8Array>({
        start(controller) {
          file = { controller, open: true };
          const state = file;
          stream.on("data", (chunk: Uint8Array) => {
            if (!state.open) return;
            controller.enqueue(chunk);
            if ((controller.desiredSize ?? 0) <= 0) stream.pause();
          });
          stream.on("limit", () => {
            fail(tooLarge(options.maxFileBytes));
            source.destroy();
          });
          stream.on("end", () => {
            if (!state.open) return;
            state.open = false;
            controller.close();
          });
        },
        pull() {
          stream.resume();
        },
        cancel() {
          if (file !== null) file.open = false;
          // The consumer refused the file: stop reading the request.
          source.destroy();
        },
      }, new ByteLengthQueuingStrategy({ highWaterMark: HIGH_WATER_BYTES }));
      resolve({ filename: decodeFormFilename(info.filename ?? ""), stream: fileStream });
    });
    parser.on("close", () => {
      if (file === null) {
        reject(new ValidationError("A file is required", { errors: [fieldError()] }));
      }
    });
    // pipeline() stops listening once it settles; later errors (a destroyed source makes busboy
    // report an unexpected end) must still land somewhere instead of crashing the process.
    parser.on("error", fail);
    source.on("error", fail);
    pipeline(source, parser, (error) => {
      if (error === null || error === undefined) return;
      fail(error);
    });
  });
}

function tooLarge(maxFileBytes: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`The upload exceeds ${maxFileBytes} bytes`);
}

function fieldError() {
  return { path: "file", message: "Required" };
}

/** Undoes the escapes the HTML form encoder applies to filenames (`"` CR LF as %22 %0D %0A). */
function decodeFormFilename(name: string): string {
  return name.replace(/%(22|0D|0A)/gi, (m) => String.fromCharCode(parseInt(m.slice(1), 16)));
}
