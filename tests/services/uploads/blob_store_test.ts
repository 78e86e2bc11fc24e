import {
  createKvBlobStore,
  KV_CHUNK_BYTES,
  STALE_STAGING_MS,
} from "../../../services/uploads/blob_store.ts";
import { assert, assertEquals } from "../../_helpers/assert.ts";
import { FakeClock } from "../../_helpers/world.ts";

function bytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = i * 7 % 251;
  return out;
}

async function keys(kv: Deno.Kv, prefix: string): Promise<number> {
  let n = 0;
  for await (const _ of kv.list({ prefix: [prefix] })) n++;
  return n;
}

Deno.test("createKvBlobStore() hides chunks until the metadata commit", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = createKvBlobStore({ kv, clock: new FakeClock() });
  const data = bytes(3 * KV_CHUNK_BYTES + 17);
  const staged = await store.stage(ReadableStream.from([data]));
  assertEquals(staged.size, data.byteLength);
  assertEquals(await keys(kv, "upload_blob_chunks"), 4);
  for await (const e of kv.list<Uint8Array>({ prefix: ["upload_blob_chunks"] })) {
    assert(e.value.byteLength <= KV_CHUNK_BYTES);
  }
  assertEquals(await store.open(staged.id), null, "not visible before commit");
  assertEquals(
    await staged.read(KV_CHUNK_BYTES - 2, 5),
    data.slice(KV_CHUNK_BYTES - 2, KV_CHUNK_BYTES + 3),
  );
  const op = kv.atomic();
  await staged.publish(op);
  assert((await op.commit()).ok);
  const body = await store.open(staged.id);
  assert(body !== null);
  assertEquals(new Uint8Array(await new Response(body).arrayBuffer()), data);
  assertEquals(await keys(kv, "upload_blobs_pending"), 0);
});

Deno.test("createKvBlobStore() leaves nothing after a failed stream or a discard", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = createKvBlobStore({ kv, clock: new FakeClock() });
  const failing = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes(5 * KV_CHUNK_BYTES));
      controller.error(new RangeError("client went away"));
    },
  });
  let caught: unknown;
  await store.stage(failing).catch((error) => caught = error);
  assert(caught instanceof RangeError, "the stream's own error is rethrown");
  const staged = await store.stage(ReadableStream.from([bytes(100)]));
  await staged.discard();
  for (const prefix of ["upload_blob_chunks", "upload_blobs", "upload_blobs_pending"]) {
    assertEquals(await keys(kv, prefix), 0, prefix);
  }
});

Deno.test("createKvBlobStore() sweeps blobs a crash left pending, and they can no longer commit", async () => {
  using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const store = createKvBlobStore({ kv, clock });
  const crashed = await store.stage(ReadableStream.from([bytes(2 * KV_CHUNK_BYTES)]));
  clock.advance(STALE_STAGING_MS + 1);
  const fresh = await store.stage(ReadableStream.from([bytes(10)]));
  assertEquals(await keys(kv, "upload_blob_chunks"), 1, "only the fresh blob's chunk is left");
  const op = kv.atomic();
  await crashed.publish(op);
  assertEquals((await op.commit()).ok, false, "a swept blob cannot appear");
  await fresh.discard();
});
