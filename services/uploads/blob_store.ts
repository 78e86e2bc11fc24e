/**
 * Where uploaded bytes live. A blob is written in two phases so that it and its metadata appear
 * together or not at all: `stage()` writes it where no reader looks, `publish()` adds its own
 * mutations to the metadata's atomic commit (and, on disk, moves it into place just before), and
 * `discard()` removes everything a failed upload wrote.
 *
 * Directory store: `<dir>/.staging/<id>` while staged, `<dir>/<id>` once published; files 0600
 * in directories 0700. Crash windows: a crash while staging leaves a staging file, swept after
 * {@linkcode STALE_STAGING_MS}; a crash between the rename and the KV commit leaves a file no
 * metadata points to (never served, as reads start from the metadata).
 *
 * KV store (`UPLOAD_STORE=kv`, Deno Deploy): an atomic commit is limited to about 800 KB, so a
 * 5 MiB blob cannot be written in one. Instead a pending marker is set first, then chunks of at
 * most 64 KiB in small atomic batches, and finally the metadata commit sets the "committed"
 * marker and deletes the pending one, checking that the pending marker is still the one written.
 * Reads require the committed marker, so chunks of a failed or unfinished upload are never
 * visible. `discard()` deletes them at once; after a crash the pending marker stays behind and a
 * later `stage()` sweeps it and its chunks once it is older than {@linkcode STALE_STAGING_MS}.
 * `expireIn` is not used for chunks: it would also delete the chunks of committed blobs.
 */
import type { Clock } from "../core/clock.ts";
import {
  uploadBlobChunkKey,
  uploadBlobChunksPrefix,
  uploadBlobKey,
  uploadBlobPendingKey,
  uploadBlobsPendingPrefix,
} from "../core/kv_keys.ts";

/** A blob written but not yet visible. */
export interface StagedBlob {
  /** Random, unguessable, time-ordered id; also the stored object's name. */
  readonly id: string;
  /** Bytes written. */
  readonly size: number;
  /** Reads `length` bytes from `offset` (random access, for reading a zip's central directory). */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Streams the whole blob (for the virus scanner). */
  stream(): ReadableStream<Uint8Array>;
  /** Prepares the blob to appear and adds its mutations to the metadata's atomic `op`. */
  publish(op: Deno.AtomicOperation): Promise<void>;
  /** Removes everything this blob wrote; safe to call after a failed `publish()` commit. */
  discard(): Promise<void>;
}

/** Stores upload bytes: a directory, or chunks in Deno KV. */
export interface BlobStore {
  /**
   * Writes `stream` to a new staged blob. When the stream errors, whatever was written is
   * removed and the stream's error is rethrown unchanged.
   */
  stage(stream: ReadableStream<Uint8Array>): Promise<StagedBlob>;
  /** Streams a published blob, or returns `null` when there is none. */
  open(blobId: string): Promise<ReadableStream<Uint8Array> | null>;
  /** Adds the mutations that make a blob invisible to `op` (the metadata delete). */
  hide(op: Deno.AtomicOperation, blobId: string): void;
  /** Removes a blob's bytes after its metadata is gone. */
  purge(blobId: string): Promise<void>;
}

/** Staged blobs older than this are debris of a crash and may be swept. */
export const STALE_STAGING_MS = 60 * 60_000;

/** Largest KV chunk: the Deno KV value size limit. */
export const KV_CHUNK_BYTES = 64 * 1024;

/** Chunks per atomic write: 4 × 64 KiB stays far below the ~800 KB limit of one commit. */
const CHUNKS_PER_COMMIT = 4;

const BLOB_ID = /^[0-9a-z]{10}[0-9a-f]{32}$/;

/** Options of {@linkcode createFileBlobStore}. */
export interface FileBlobStoreOptions {
  /** The directory; created with mode 0700 when missing. Must be outside any served folder. */
  dir: string;
  clock: Clock;
}

/** Creates the directory store. Files get random names; the user's filename is never a path. */
export function createFileBlobStore(options: FileBlobStoreOptions): BlobStore {
  const { dir, clock } = options;
  const stagingDir = `${dir}/.staging`;
  let prepared = false;

  async function prepare(): Promise<void> {
    if (prepared) return;
    await Deno.mkdir(stagingDir, { recursive: true, mode: 0o700 });
    // mkdir keeps an existing directory's mode; uploads must not be readable by other users.
    await Deno.chmod(dir, 0o700);
    await Deno.chmod(stagingDir, 0o700);
    prepared = true;
  }

  async function sweep(now: Date): Promise<void> {
    const cutoff = blobIdPrefix(new Date(now.getTime() - STALE_STAGING_MS));
    for await (const entry of Deno.readDir(stagingDir)) {
      if (entry.isFile && BLOB_ID.test(entry.name) && entry.name.slice(0, 10) < cutoff) {
        await removeIfPresent(`${stagingDir}/${entry.name}`);
      }
    }
  }

  return {
    async stage(stream) {
      await prepare();
      const now = clock.now();
      await sweep(now);
      const id = newBlobId(now);
      const stagingPath = `${stagingDir}/${id}`;
      const finalPath = `${dir}/${id}`;
      let size = 0;
      const file = await Deno.open(stagingPath, { createNew: true, write: true, mode: 0o600 });
      try {
        await stream.pipeThrough(countBytes((n) => size += n)).pipeTo(file.writable);
      } catch (error) {
        await removeIfPresent(stagingPath);
        throw error;
      }
      let path = stagingPath;
      return {
        id,
        size,
        read: (offset, length) => readRange(path, offset, length),
        stream: () => lazyStream(async () => (await Deno.open(path, { read: true })).readable),
        async publish() {
          // A retried commit publishes again; the move happens once.
          if (path === finalPath) return;
          await Deno.rename(stagingPath, finalPath);
          path = finalPath;
        },
        async discard() {
          await removeIfPresent(stagingPath);
          await removeIfPresent(finalPath);
        },
      };
    },
    async open(blobId) {
      if (!BLOB_ID.test(blobId)) return null;
      try {
        return (await Deno.open(`${dir}/${blobId}`, { read: true })).readable;
      } catch (error) {
        // A missing file is an absent blob, which the caller reports as not found.
        if (error instanceof Deno.errors.NotFound) return null;
        throw error;
      }
    },
    hide() {},
    async purge(blobId) {
      if (BLOB_ID.test(blobId)) await removeIfPresent(`${dir}/${blobId}`);
    },
  };
}

/** Options of {@linkcode createKvBlobStore}. */
export interface KvBlobStoreOptions {
  kv: Deno.Kv;
  clock: Clock;
}

interface CommittedBlob {
  size: number;
  chunks: number;
}

/** Creates the Deno KV store: 64 KiB chunks, visible only once committed with the metadata. */
export function createKvBlobStore(options: KvBlobStoreOptions): BlobStore {
  const { kv, clock } = options;

  async function deleteChunks(blobId: string): Promise<void> {
    let op = kv.atomic();
    let n = 0;
    for await (const entry of kv.list({ prefix: uploadBlobChunksPrefix(blobId) })) {
      op.delete(entry.key);
      if (++n % 100 === 0) {
        await op.commit();
        op = kv.atomic();
      }
    }
    await op.commit();
  }

  async function sweep(now: Date): Promise<void> {
    const end = uploadBlobPendingKey(blobIdPrefix(new Date(now.getTime() - STALE_STAGING_MS)));
    const stale = kv.list({ prefix: uploadBlobsPendingPrefix(), end }, { limit: 5 });
    for await (const entry of stale) {
      const blobId = String(entry.key[1]);
      await deleteChunks(blobId);
      await kv.atomic().check(entry).delete(entry.key).commit();
    }
  }

  function chunkStream(blobId: string, chunks: number): ReadableStream<Uint8Array> {
    let index = 0;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (index >= chunks) return controller.close();
        const entry = await kv.get<Uint8Array>(uploadBlobChunkKey(blobId, index++));
        if (entry.value === null) {
          controller.error(new Error(`Blob ${blobId} is missing chunk ${index - 1}`));
          return;
        }
        controller.enqueue(entry.value);
      },
    }, { highWaterMark: 0 });
  }

  return {
    async stage(stream) {
      const now = clock.now();
      await sweep(now);
      const id = newBlobId(now);
      const pendingKey = uploadBlobPendingKey(id);
      await kv.set(pendingKey, { started_at: now.toISOString() });
      let size = 0;
      let chunks = 0;
      let batch: Uint8Array[] = [];
      async function flush(): Promise<void> {
        const op = kv.atomic();
        for (const chunk of batch) op.set(uploadBlobChunkKey(id, chunks++), chunk);
        batch = [];
        await op.commit();
      }
      try {
        for await (const chunk of stream.pipeThrough(rechunk(KV_CHUNK_BYTES))) {
          size += chunk.byteLength;
          batch.push(chunk);
          if (batch.length === CHUNKS_PER_COMMIT) await flush();
        }
        if (batch.length > 0) await flush();
      } catch (error) {
        await deleteChunks(id);
        await kv.delete(pendingKey);
        throw error;
      }
      const pending = await kv.get(pendingKey);
      return {
        id,
        size,
        async read(offset, length) {
          const out = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
          let filled = 0;
          while (filled < out.byteLength) {
            const at = offset + filled;
            const index = Math.floor(at / KV_CHUNK_BYTES);
            const entry = await kv.get<Uint8Array>(uploadBlobChunkKey(id, index));
            if (entry.value === null) throw new Error(`Blob ${id} is missing chunk ${index}`);
            const part = entry.value.subarray(at - index * KV_CHUNK_BYTES);
            const take = Math.min(part.byteLength, out.byteLength - filled);
            out.set(part.subarray(0, take), filled);
            filled += take;
          }
          return out;
        },
        stream: () => chunkStream(id, chunks),
        publish(op) {
          // The check fails the whole commit if a sweep removed this blob meanwhile.
          op.check(pending)
            .set(uploadBlobKey(id), { size, chunks } satisfies CommittedBlob)
            .delete(pendingKey);
          return Promise.resolve();
        },
        async discard() {
          // Chunks first: if this stops half-way, the pending marker still leads a sweep to them.
          await deleteChunks(id);
          await kv.delete(pendingKey);
        },
      };
    },
    async open(blobId) {
      const committed = await kv.get<CommittedBlob>(uploadBlobKey(blobId));
      if (committed.value === null) return null;
      return chunkStream(blobId, committed.value.chunks);
    },
    hide(op, blobId) {
      op.delete(uploadBlobKey(blobId));
    },
    async purge(blobId) {
      await deleteChunks(blobId);
    },
  };
}

/** Time-ordered blob id: 10 base36 digits of milliseconds, then 128 random bits. */
function newBlobId(now: Date): string {
  const random = crypto.getRandomValues(new Uint8Array(16));
  return blobIdPrefix(now) + Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("");
}

function blobIdPrefix(at: Date): string {
  return Math.max(0, at.getTime()).toString(36).padStart(10, "0");
}

function countBytes(add: (n: number) => void): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, controller) {
      add(chunk.byteLength);
      controller.enqueue(chunk);
    },
  });
}

/** Regroups a byte stream into chunks of exactly `size` bytes (the last may be shorter). */
function rechunk(size: number): TransformStream<Uint8Array, Uint8Array> {
  let buffer = new Uint8Array(size);
  let filled = 0;
  return new TransformStream({
    transform(chunk, controller) {
      let at = 0;
      while (at < chunk.byteLength) {
        const take = Math.min(size - filled, chunk.byteLength - at);
        buffer.set(chunk.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled === size) {
          controller.enqueue(buffer);
          buffer = new Uint8Array(size);
          filled = 0;
        }
      }
    },
    flush(controller) {
      if (filled > 0) controller.enqueue(buffer.slice(0, filled));
    },
  });
}

async function readRange(path: string, offset: number, length: number): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  await file.seek(offset, Deno.SeekMode.Start);
  const out = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(out.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return out.subarray(0, filled);
}

/** A stream whose source is opened on the first read, so an unread stream holds no file. */
function lazyStream(
  open: () => Promise<ReadableStream<Uint8Array>>,
): ReadableStream<Uint8Array> {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      reader ??= (await open()).getReader();
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel(reason) {
      await reader?.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    // Already gone is the state we want.
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
