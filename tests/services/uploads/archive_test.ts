import { gzipSync } from "node:zlib";
import { ArchiveRejectedError } from "../../../services/core/errors.ts";
import { type ArchiveLimits, inspectZip } from "../../../services/uploads/archive.ts";
import { assertMatch, assertRejects } from "../../_helpers/assert.ts";
import { concat, png, zip, type ZipEntry } from "../../_helpers/files.ts";

const MiB = 1024 * 1024;

function source(bytes: Uint8Array) {
  return {
    size: bytes.byteLength,
    read: (offset: number, length: number) =>
      Promise.resolve(bytes.subarray(offset, offset + length)),
  };
}

async function refusal(bytes: Uint8Array, limits?: ArchiveLimits): Promise<string> {
  const error = await assertRejects(() => inspectZip(source(bytes), limits), ArchiveRejectedError);
  return error.message;
}

/** A tar archive of one file: a 512-byte ustar header ("ustar" at offset 257), then the data. */
function tar(name: string, data: string): Uint8Array {
  const header = new Uint8Array(512);
  const text = new TextEncoder();
  header.set(text.encode(name), 0);
  header.set(text.encode("0000644\0"), 100);
  header.set(text.encode(data.length.toString(8).padStart(11, "0") + "\0"), 124);
  header.set(text.encode("ustar\x0000"), 257);
  const body = new Uint8Array(512);
  body.set(text.encode(data));
  return concat(header, body, new Uint8Array(1024));
}

/**
 * `archive` with the uncompressed size its first entry declares rewritten to `declared`, in
 * the local header and the central directory alike (so strict readers see no disagreement).
 */
function declaring(archive: Uint8Array, declared: number): Uint8Array {
  const out = archive.slice();
  const view = new DataView(out.buffer);
  if (view.getUint32(0, true) !== 0x04034b50) throw new Error("not a local file header");
  const flags = view.getUint16(6, true);
  if (flags & 0x08) throw new Error("sizes are in a data descriptor");
  view.setUint32(22, declared, true);
  for (let at = out.byteLength - 22; at >= 0; at--) {
    if (view.getUint32(at, true) === 0x02014b50) {
      view.setUint32(at + 24, declared, true);
      return out;
    }
  }
  throw new Error("no central directory");
}

Deno.test("inspectZip() finds nested archives by content, whatever their name (#10 finding 4b)", async (t) => {
  const inner = await zip([{ name: "../evil.txt", data: "pwned" }]);
  const cases: [string, ZipEntry][] = [
    ["a zip named .txt", { name: "notes.txt", data: inner }],
    ["a zip stored uncompressed", { name: "data.bin", data: inner, options: { level: 0 } }],
    ["gzip", { name: "data.bin", data: new Uint8Array(gzipSync("hello")) }],
    ["bzip2", { name: "data.bin", data: concat(new TextEncoder().encode("BZh91AY&SY"), png()) }],
    ["xz", { name: "data", data: new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, 0, 4]) }],
    ["7z", { name: "data", data: new Uint8Array([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c, 0, 4]) }],
    ["rar", { name: "data", data: new TextEncoder().encode("Rar!\x1a\x07\x01\x00") }],
    ["zstd", { name: "data", data: new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x05]) }],
    ["tar (ustar at 257)", {
      name: "backup.dat",
      data: tar("../../etc/cron.d/x", "* * * * * root id"),
    }],
  ];
  for (const [label, entry] of cases) {
    await t.step(`${label} is refused`, async () => {
      const archive = await zip([{ name: "readme.txt", data: "hello" }, entry]);
      assertMatch(await refusal(archive), /nested archive/);
    });
  }
  await t.step("text and images pass", async () => {
    await inspectZip(source(
      await zip([
        { name: "readme.txt", data: "PK is just text here" },
        { name: "img/a.png", data: png() },
        { name: "tiny", data: "x" },
      ]),
    ));
  });
});

Deno.test("inspectZip() counts inflated bytes instead of trusting declared sizes (#10 finding 4c)", async (t) => {
  await t.step("a zip bomb declaring 1000 bytes is stopped while inflating", async () => {
    const zeros = new Uint8Array(20 * MiB);
    const honest = await zip([{
      name: "zeros.bin",
      data: zeros,
      options: { dataDescriptor: false },
    }]);
    assertMatch(await refusal(honest), /compression ratio above 100/);
    // Inflation stops at the first chunk past the declared size, long before 20 MiB.
    const bomb = declaring(honest, 1000);
    assertMatch(await refusal(bomb), /past its declared size|compression ratio above 100/);
  });
  await t.step("the total budget is counted while inflating", async () => {
    const random = new Uint8Array(600 * 1024);
    for (let at = 0; at < random.byteLength; at += 65536) {
      crypto.getRandomValues(random.subarray(at, at + 65536));
    }
    const archive = await zip([{ name: "a.bin", data: random }, { name: "b.bin", data: random }]);
    await inspectZip(source(archive), { maxTotalBytes: 2 * MiB });
    assertMatch(await refusal(archive, { maxTotalBytes: MiB }), /expands to more than 1048576/);
  });
  await t.step("an entry inflating past its declared size is refused", async () => {
    const lying = declaring(
      await zip([{ name: "a.txt", data: "x".repeat(5000), options: { dataDescriptor: false } }]),
      10,
    );
    assertMatch(await refusal(lying), /past its declared size/);
  });
});

Deno.test("inspectZip() refuses names that only look harmless on one system (#10 finding 4)", async (t) => {
  const unsafe = [
    "setup.exe.",
    "setup.exe ",
    "setup.exe. . ",
    "a/.. /x.txt",
    "a/../x.txt",
    "dir /x.txt",
    "CON",
    "con.txt",
    "Aux.tar.txt",
    "nul",
    "docs/PRN.md",
    "COM1.txt",
    "lpt9",
    "LPT\u00b9.txt",
    "conin$",
    "CON .txt",
    "dir\\file.txt",
    "..\\x.txt",
    "C:x.txt",
    "file.txt:stream",
    "a\u0001b.txt",
    "a\u0085b.txt",
    "a//b.txt",
    "what?.txt",
  ];
  for (const name of unsafe) {
    await t.step(JSON.stringify(name), async () => {
      assertMatch(await refusal(await zip([{ name, data: "x" }])), /unsafe path/);
    });
  }
  await t.step("ordinary names pass", async () => {
    await inspectZip(source(
      await zip([
        { name: "docs/", data: "" },
        { name: "docs/readme.txt", data: "x" },
        { name: "console.log.txt", data: "x" },
        { name: "COM10.txt", data: "x" },
        { name: "contents/.hidden", data: "x" },
        { name: "résumé (final).pdf", data: "x" },
      ]),
    ));
  });
});

Deno.test("inspectZip() refuses a file flagged as a directory (directory-attribute bypass)", async () => {
  // zip.js believes the DOS directory bit; unzip tools go by the trailing "/" and extract a file.
  const bytes = await zip([{
    name: "evil.exe",
    data: "MZ not really a program",
    options: { externalFileAttributes: 0x10, msDosCompatible: true },
  }]);
  assertMatch(await refusal(bytes), /marked as a directory/);
});
