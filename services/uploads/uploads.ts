import { commitOrRetry, RETRY, retryOnConflict } from "../core/kv.ts";
import type { ArchiveLimits } from "./archive.ts";
import { formatEndTracker } from "./format_end.ts";
import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { BlobStore, StagedBlob } from "./blob_store.ts";
import type { Clock } from "../core/clock.ts";
import type { UploadExtension } from "../config/config.ts";
import {
  ConflictError,
  MalwareDetectedError,
  NotFoundError,
  PayloadTooLargeError,
  QuotaExceededError,
  UnsupportedMediaTypeError,
  ValidationError,
} from "../core/errors.ts";
import { createKeyedQueue } from "../core/keyed_queue.ts";
import { incrementalSha256, randomId } from "../core/crypto.ts";
import {
  uploadByUserKey,
  uploadKey,
  uploadsByUserPrefix,
  uploadUsageKey,
} from "../core/kv_keys.ts";
import type { Logger } from "../core/logger.ts";
import type { VirusScanner } from "./scanner.ts";

/** An upload as the API shows it. */
export interface UploadView {
  id: string;
  filename: string;
  content_type: string;
  size: number;
  sha256: string;
  created_at: string;
}

/** The stored metadata record. */
interface UploadRecord extends UploadView {
  owner_id: string;
  blob_id: string;
}

/** Who is asking: owners see their own uploads, admins every upload. */
export interface UploadCaller {
  userId: string;
  isAdmin: boolean;
}

/** A file arriving from a client. */
export interface IncomingFile {
  /** The client's filename, untrusted. */
  filename: string;
  stream: ReadableStream<Uint8Array>;
}

/** Validated, scanned, safely stored user files. */
export interface UploadService {
  /**
   * Checks, scans and stores one file; the file and its metadata appear together or not at all.
   *
   * @throws {UnsupportedMediaTypeError} for an extension off the allowlist, or content whose
   *   magic bytes do not match it (markup, polyglots, executables under any name).
   * @throws {ValidationError} for an empty file or a filename with nothing left once sanitized.
   * @throws {PayloadTooLargeError} past the size limit (raised by the stream or here).
   * @throws {ArchiveRejectedError} for a zip that breaks the archive policy.
   * @throws {MalwareDetectedError} when the scanner finds something (audited).
   * @throws {ScannerUnavailableError} when a configured scanner gives no verdict.
   * @throws {QuotaExceededError} when the owner's quota would be exceeded.
   * @throws {ConflictError} when the quota counter keeps changing under concurrent uploads.
   */
  create(ownerId: string, file: IncomingFile, meta: RequestMeta): Promise<UploadView>;
  /** The caller's own uploads, oldest first. */
  list(ownerId: string): Promise<UploadView[]>;
  /** One upload the caller may see, or `null` (absent and not-yours look the same). */
  getUpload(caller: UploadCaller, uploadId: string): Promise<UploadView | null>;
  /** One upload with its bytes as a stream, or `null` like {@linkcode UploadService.getUpload}. */
  openUpload(
    caller: UploadCaller,
    uploadId: string,
  ): Promise<{ upload: UploadView; body: ReadableStream<Uint8Array> } | null>;
  /**
   * Deletes an upload and its bytes.
   *
   * @throws {NotFoundError} when it does not exist or the caller may not see it.
   */
  deleteUpload(caller: UploadCaller, uploadId: string, meta: RequestMeta): Promise<void>;
}

/** Dependencies of {@linkcode createUploadService}. */
export interface UploadDeps {
  kv: Deno.Kv;
  clock: Clock;
  audit: AuditService;
  logger: Logger;
  store: BlobStore;
  /** `null` turns scanning off. */
  scanner: VirusScanner | null;
  maxBytes: number;
  allowedExtensions: readonly UploadExtension[];
  /** 0 turns the quota off. */
  quotaBytes: number;
  /** @default the `inspectZip` defaults (archive.ts) */
  archiveLimits?: ArchiveLimits;
}

/** The content type each extension must sniff as (file-type's names). */
const EXTENSION_TYPES: Readonly<Record<UploadExtension, string>> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  pdf: "application/pdf",
  zip: "application/zip",
};

/** Bytes file-type needs to decide (its own `reasonableDetectionSizeInBytes`). */
const SNIFF_BYTES = 4100;

/**
 * Markup a browser's sniffer would act on (WHATWG MIME Sniffing §7.1 looks at the first
 * 1445 bytes); refused in every upload head so no polyglot renders as HTML or SVG anywhere.
 */
const MARKUP =
  /<(script|html|svg|!doctype\s+html|iframe|body|head|object|embed|form|meta|a\s+href)[\s>/]/i;

/**
 * Zip end-of-central-directory record. Unzip tools look for it anywhere in the last 64 KiB + 22
 * bytes (Python's zipfile ignores what follows it), so a zip hidden inside another format's last
 * bytes still extracts: no such signature may sit there in a non-zip upload.
 */
const EOCD_SIGNATURE = new Uint8Array([0x50, 0x4b, 0x05, 0x06]);
const EOCD_SEARCH_BYTES = 22 + 0xffff;

/** Displayed filenames are bounded (most file systems allow 255 bytes). */
const MAX_FILENAME_CHARS = 200;

/** Client filenames are cut to this many UTF-8 bytes before anything else looks at them. */
const MAX_FILENAME_BYTES = 255;

const utf8 = new TextEncoder();

const UPLOAD_ID = /^[A-Za-z0-9_-]{22}$/;

/** Creates the upload service. */
export function createUploadService(deps: UploadDeps): UploadService {
  const { kv, clock, audit, store, scanner, logger } = deps;
  const allowed = new Set<string>(deps.allowedExtensions);

  async function visibleRecord(caller: UploadCaller, uploadId: string) {
    if (!UPLOAD_ID.test(uploadId)) return null;
    const entry = await kv.get<UploadRecord>(uploadKey(uploadId));
    const record = entry.value;
    // Someone else's upload reads exactly like a missing one: no existence leak.
    if (record === null || (record.owner_id !== caller.userId && !caller.isAdmin)) return null;
    return { entry: entry as Deno.KvEntry<UploadRecord>, record };
  }

  // One owner's uploads and deletes all move one usage counter: queue them per owner.
  const perOwner = createKeyedQueue();

  function commit(record: UploadRecord, staged: StagedBlob): Promise<void> {
    return perOwner.run(record.owner_id, () => commitNow(record, staged));
  }

  async function commitNow(record: UploadRecord, staged: StagedBlob): Promise<void> {
    await retryOnConflict(async (attempt) => {
      const usage = await kv.get<number>(uploadUsageKey(record.owner_id));
      const used = usage.value ?? 0;
      if (deps.quotaBytes > 0 && used + record.size > deps.quotaBytes) {
        throw new QuotaExceededError(
          `The upload would exceed the storage quota of ${deps.quotaBytes} bytes`,
        );
      }
      const op = kv.atomic()
        .check(usage)
        .check({ key: uploadKey(record.id), versionstamp: null })
        .set(uploadKey(record.id), record)
        .set(uploadByUserKey(record.owner_id, record.id), record.id)
        .set(uploadUsageKey(record.owner_id), used + record.size);
      await staged.publish(op);
      return await commitOrRetry(op, attempt);
    }, {
      exhausted: () => new ConflictError("Cannot store the upload: too many concurrent uploads"),
    });
  }

  return {
    async create(ownerId, file, meta) {
      const now = clock.now();
      const filename = sanitizeFilename(file.filename);
      const ext = extensionOf(filename);
      if (ext === null || !allowed.has(ext)) {
        await file.stream.cancel();
        throw new UnsupportedMediaTypeError(
          `Only these file types are accepted: ${[...allowed].join(", ")}`,
        );
      }
      const inspection = inspect(EXTENSION_TYPES[ext as UploadExtension], deps.maxBytes);
      const staged = await store.stage(file.stream.pipeThrough(inspection.transform));
      try {
        const { contentType, sha256 } = inspection.result();
        if (contentType === "application/zip") {
          // zip.js loads on the first archive, not at start-up; every archive is still inspected.
          const { inspectZip } = await import("./archive.ts");
          await inspectZip(staged, deps.archiveLimits);
        }
        if (scanner !== null) {
          const verdict = await scanner.scan(staged.stream());
          if (!verdict.clean) {
            await audit.record({
              type: "upload.malware_detected",
              outcome: "failure",
              userId: ownerId,
              meta,
              details: { signature: verdict.signature, filename, sha256 },
            });
            throw new MalwareDetectedError("The file was refused by the virus scanner");
          }
        }
        const record: UploadRecord = {
          id: randomId(),
          owner_id: ownerId,
          blob_id: staged.id,
          filename,
          content_type: contentType,
          size: staged.size,
          sha256,
          created_at: now.toISOString(),
        };
        await commit(record, staged);
        await audit.record({
          type: "upload.created",
          outcome: "success",
          userId: ownerId,
          meta,
          details: { upload_id: record.id, size: record.size, content_type: contentType },
        });
        return toView(record);
      } catch (error) {
        // No orphans: whatever the failure, the staged bytes go with it.
        await staged.discard();
        throw error;
      }
    },
    async list(ownerId) {
      const out: UploadView[] = [];
      for await (const entry of kv.list<string>({ prefix: uploadsByUserPrefix(ownerId) })) {
        const record = await kv.get<UploadRecord>(uploadKey(entry.value));
        if (record.value !== null) out.push(toView(record.value));
      }
      return out;
    },
    async getUpload(caller, uploadId) {
      const found = await visibleRecord(caller, uploadId);
      return found === null ? null : toView(found.record);
    },
    async openUpload(caller, uploadId) {
      const found = await visibleRecord(caller, uploadId);
      if (found === null) return null;
      const body = await store.open(found.record.blob_id);
      if (body === null) {
        logger.error("upload bytes missing", { upload_id: uploadId });
        return null;
      }
      return { upload: toView(found.record), body };
    },
    async deleteUpload(caller, uploadId, meta) {
      const owner = (await visibleRecord(caller, uploadId))?.record.owner_id;
      if (owner === undefined) throw new NotFoundError("No such upload");
      await perOwner.run(owner, () => deleteNow(caller, uploadId, meta));
    },
  };

  async function deleteNow(
    caller: UploadCaller,
    uploadId: string,
    meta: RequestMeta,
  ): Promise<void> {
    const record = await retryOnConflict(async (attempt) => {
      const found = await visibleRecord(caller, uploadId);
      if (found === null) throw new NotFoundError("No such upload");
      const { record, entry } = found;
      const usage = await kv.get<number>(uploadUsageKey(record.owner_id));
      const op = kv.atomic()
        .check(entry)
        .check(usage)
        .delete(uploadKey(record.id))
        .delete(uploadByUserKey(record.owner_id, record.id))
        .set(uploadUsageKey(record.owner_id), Math.max(0, (usage.value ?? 0) - record.size));
      store.hide(op, record.blob_id);
      return (await commitOrRetry(op, attempt)) === RETRY ? RETRY : record;
    }, { exhausted: () => new ConflictError("Cannot delete the upload: it keeps changing") });
    // The metadata is gone, so the bytes are unreachable even if this purge fails.
    await store.purge(record.blob_id);
    await audit.record({
      type: "upload.deleted",
      outcome: "success",
      userId: caller.userId,
      meta,
      details: { upload_id: record.id, owner_id: record.owner_id },
    });
  }
}

/**
 * Reduces a client filename to safe display metadata: no directory part, no control or
 * bidirectional-format characters, no leading dots, bounded length; the extension is kept.
 * The name is cut to {@linkcode MAX_FILENAME_BYTES} before any pattern runs on it, and every
 * pattern is linear, so a long crafted name cannot stall the event loop.
 *
 * @throws {ValidationError} when nothing is left.
 */
export function sanitizeFilename(raw: string): string {
  const slash = Math.max(raw.lastIndexOf("/"), raw.lastIndexOf("\\"));
  const base = capUtf8(raw.slice(slash + 1), MAX_FILENAME_BYTES).normalize("NFC");
  let name = base
    .replace(/[\t\n\v\f\r]/g, " ")
    .replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, "")
    .replace(/["<>:|?*]/g, "_")
    .replace(/\s+/g, " ")
    // The lookbehind lets a trailing run match only from its first character: `[\s.]+$` alone
    // retries from every position of a long run of dots and spaces (quadratic).
    .replace(/^[\s.]+|(?<![\s.])[\s.]+$/g, "");
  if (name.length > MAX_FILENAME_CHARS) {
    const dot = name.lastIndexOf(".");
    const ext = dot > 0 && name.length - dot <= 10 ? name.slice(dot) : "";
    name = Array.from(name.slice(0, dot > 0 && ext !== "" ? dot : name.length))
      .slice(0, MAX_FILENAME_CHARS - ext.length).join("") + ext;
  }
  if (name === "") {
    throw new ValidationError("The filename is empty once sanitized", {
      errors: [{ path: "file", message: "Filename required" }],
    });
  }
  return name;
}

/** At most `maxBytes` UTF-8 bytes of `name`, whole code points, keeping a short extension. */
function capUtf8(name: string, maxBytes: number): string {
  // One UTF-16 unit is at most 3 UTF-8 bytes (a surrogate pair, 2 units, is 4).
  if (name.length * 3 <= maxBytes || utf8.encode(name).byteLength <= maxBytes) return name;
  const dot = name.lastIndexOf(".");
  const ext = dot > 0 && name.length - dot <= 10 ? name.slice(dot) : "";
  let budget = maxBytes - utf8.encode(ext).byteLength;
  let kept = "";
  for (const char of name.slice(0, Math.min(name.length - ext.length, maxBytes))) {
    const size = utf8.encode(char).byteLength;
    if (size > budget) break;
    budget -= size;
    kept += char;
  }
  return kept + ext;
}

/** `Content-Disposition: attachment` with an ASCII fallback and an RFC 6266/8187 `filename*`. */
export function contentDisposition(filename: string): string {
  const fallback = filename.replace(/[^\x20-\x7e]|["\\%;]/g, "_");
  const encoded = encodeURIComponent(filename).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

function extensionOf(filename: string): string | null {
  const dot = filename.lastIndexOf(".");
  return dot <= 0 ? null : filename.slice(dot + 1).toLowerCase();
}

interface Inspection {
  transform: TransformStream<Uint8Array, Uint8Array>;
  /** The verdict; valid once the stream has been read to its end. */
  result(): { contentType: string; sha256: string };
}

/**
 * Counts, hashes and sniffs the bytes as they pass: the head must carry the magic bytes of
 * `expectedType` and no markup, the file must end where its format says it ends, and a non-zip
 * must not carry a zip directory in its last bytes (polyglot). Only the head is buffered.
 */
function inspect(expectedType: string, maxBytes: number): Inspection {
  const hash = incrementalSha256();
  const end = formatEndTracker(expectedType);
  const eocd = expectedType === "application/zip" ? null : signatureFinder(EOCD_SIGNATURE);
  let size = 0;
  let head: Uint8Array | null = new Uint8Array(0);
  let contentType: string | null = null;
  let sha256: string | null = null;

  async function verifyHead(controller: TransformStreamDefaultController<Uint8Array>) {
    const bytes = head!;
    head = null;
    if (bytes.byteLength === 0) {
      throw new ValidationError("The file is empty", {
        errors: [{ path: "file", message: "Must not be empty" }],
      });
    }
    // file-type loads on the first upload, not at start-up.
    const { fileTypeFromBuffer } = await import("file-type");
    const detected = await fileTypeFromBuffer(bytes);
    const text = new TextDecoder("latin1").decode(bytes);
    if (detected?.mime !== expectedType || MARKUP.test(text)) {
      throw new UnsupportedMediaTypeError("The file's content does not match its extension");
    }
    contentType = detected.mime;
    controller.enqueue(bytes);
  }

  const transform = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      size += chunk.byteLength;
      if (size > maxBytes) throw new PayloadTooLargeError(`The upload exceeds ${maxBytes} bytes`);
      hash.update(chunk);
      eocd?.push(chunk);
      if (head === null) {
        end?.push(chunk);
        controller.enqueue(chunk);
        return;
      }
      head = concat(head, chunk);
      if (head.byteLength >= SNIFF_BYTES) {
        const bytes = head;
        await verifyHead(controller);
        end?.push(bytes);
      }
    },
    async flush(controller) {
      if (head !== null) {
        const bytes = head;
        await verifyHead(controller);
        end?.push(bytes);
      }
      end?.finish();
      if (eocd !== null && eocd.last() >= 0 && eocd.last() >= size - EOCD_SEARCH_BYTES) {
        throw new UnsupportedMediaTypeError(
          "The file carries a zip directory in its last bytes (a polyglot)",
        );
      }
      sha256 = hash.digest("hex");
    },
  });
  return {
    transform,
    result() {
      if (contentType === null || sha256 === null) {
        throw new TypeError("Cannot read the inspection result before the stream ends");
      }
      return { contentType, sha256 };
    },
  };
}

/** Finds the offset of the last occurrence of `signature` in a stream, keeping 3 bytes. */
function signatureFinder(signature: Uint8Array) {
  let offset = 0;
  let last = -1;
  let carry = new Uint8Array(0);
  function search(bytes: Uint8Array, base: number): void {
    for (
      let at = bytes.indexOf(signature[0]!);
      at >= 0;
      at = bytes.indexOf(signature[0]!, at + 1)
    ) {
      let i = 1;
      while (i < signature.byteLength && bytes[at + i] === signature[i]) i++;
      if (i === signature.byteLength) last = base + at;
    }
  }
  return {
    push(chunk: Uint8Array): void {
      const keep = signature.byteLength - 1;
      // Matches across the chunk boundary, then inside the chunk.
      search(concat(carry, chunk.subarray(0, keep)), offset - carry.byteLength);
      search(chunk, offset);
      offset += chunk.byteLength;
      carry = chunk.byteLength >= keep ? chunk.slice(-keep) : concat(carry, chunk).slice(-keep);
    },
    /** Offset of the last occurrence, or -1. */
    last: (): number => last,
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

function toView(record: UploadRecord): UploadView {
  return {
    id: record.id,
    filename: record.filename,
    content_type: record.content_type,
    size: record.size,
    sha256: record.sha256,
    created_at: record.created_at,
  };
}
