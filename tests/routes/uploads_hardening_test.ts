/** Upload hardening from security review #10: polyglots, archive inspection, filename regexes. */
import { signUp } from "../_helpers/accounts.ts";
import { assert, assertEquals, assertMatch, assertProblem } from "../_helpers/assert.ts";
import { concat, gif, jpeg, pdf, png, webp, zip } from "../_helpers/files.ts";
import { bearer, json } from "../_helpers/http.ts";
import { openWorld } from "../_helpers/world.ts";

async function world() {
  const dir = await Deno.makeTempDir({ prefix: "bulwark_uploads_hardening_" });
  const w = await openWorld({
    env: { UPLOAD_STORE: "file", UPLOAD_DIR: `${dir}/uploads`, RATE_LIMIT_UPLOADS: "1000/minute" },
  });
  const owner = await signUp(w.app);
  return {
    ...w,
    owner,
    async [Symbol.asyncDispose]() {
      await w[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
type World = Awaited<ReturnType<typeof world>>;

async function upload(w: World, bytes: Uint8Array, filename: string) {
  const body = new FormData();
  body.append("file", new File([bytes as Uint8Array<ArrayBuffer>], filename));
  return await w.app.request("/uploads", {
    method: "POST",
    body,
    headers: bearer(w.owner.access),
  });
}

/**
 * What a real unzip tool makes of `bytes`: Info-ZIP `unzip -:` (which honours `..`) extracting
 * into `tmp/a/b`, or else Python's zipfile listing. `true` when `../evil.txt` comes out; `null`
 * when neither tool is installed.
 */
async function unzipExtractsParentPath(bytes: Uint8Array): Promise<boolean | null> {
  const dir = await Deno.makeTempDir({ prefix: "bulwark_unzip_" });
  try {
    await Deno.writeFile(`${dir}/poly`, bytes);
    await Deno.mkdir(`${dir}/a/b`, { recursive: true });
    const run = async (cmd: string, args: string[]) => {
      try {
        return await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return null;
        throw error;
      }
    };
    const unzip = await run("unzip", ["-:", "-o", `${dir}/poly`, "-d", `${dir}/a/b`]);
    if (unzip !== null) {
      try {
        return (await Deno.readTextFile(`${dir}/a/evil.txt`)) === "pwned";
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return false;
        throw error;
      }
    }
    const script =
      "import sys, zipfile; print('../evil.txt' in zipfile.ZipFile(sys.argv[1]).namelist())";
    const python = await run("python3", ["-c", script, `${dir}/poly`]);
    if (python === null) return null;
    return new TextDecoder().decode(python.stdout).trim() === "True";
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const FORMATS: [string, string, () => Uint8Array][] = [
  ["PNG", "poly.png", () => png()],
  ["JPEG", "poly.jpg", jpeg],
  ["GIF", "poly.gif", gif],
  ["WebP", "poly.webp", webp],
  ["PDF", "poly.pdf", pdf],
];

Deno.test("POST /uploads refuses images and PDFs carrying a zip after their end (polyglot archive bypass, #10 finding 4a)", async (t) => {
  await using w = await world();
  const payload = await zip([{ name: "../evil.txt", data: "pwned" }]);
  for (const [label, filename, make] of FORMATS) {
    await t.step(`${label} as such is accepted`, async () => {
      assertEquals((await upload(w, make(), filename)).status, 201);
    });
    await t.step(
      `${label} + zip + one trailing byte is 415, though unzip extracts ../`,
      async () => {
        const bytes = concat(make(), payload, new Uint8Array([0x0a]));
        const extracts = await unzipExtractsParentPath(bytes);
        if (extracts !== null) assert(extracts, "the polyglot should really extract ../evil.txt");
        const res = await upload(w, bytes, filename);
        await assertProblem(res, 415, "unsupported_media_type");
      },
    );
  }
  await t.step(
    "a PDF with a zip before a final %%EOF is 415 (zip directory in its last bytes)",
    async () => {
      const bytes = concat(pdf(), payload, new TextEncoder().encode("\n%%EOF\n"));
      const extracts = await unzipExtractsParentPath(bytes);
      if (extracts !== null) assert(extracts, "the polyglot should really extract ../evil.txt");
      const res = await upload(w, bytes, "poly.pdf");
      assertMatch(String((await json(res.clone())).detail ?? ""), /zip directory/);
      await assertProblem(res, 415, "unsupported_media_type");
    },
  );
  await t.step("nothing was stored but the five plain files", async () => {
    const list = await w.app.request("/uploads", { headers: bearer(w.owner.access) });
    assertEquals((await list.json() as unknown[]).length, FORMATS.length);
  });
});

Deno.test("POST /uploads inspects what zip entries contain, not what they declare (#10 finding 4b, 4c)", async (t) => {
  await using w = await world();
  const inner = await zip([{ name: "../evil.txt", data: "pwned" }]);
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "a zip hidden under a .txt name (nested archive by content)",
      await zip([{ name: "notes.txt", data: inner }]),
      /nested archive/,
    ],
    [
      "setup.exe. (trailing dot, runs on Windows)",
      await zip([{ name: "setup.exe.", data: "MZ" }]),
      /unsafe path/,
    ],
    ["a/.. /x (climbs on Windows)", await zip([{ name: "a/.. /x.txt", data: "x" }]), /unsafe path/],
    ["a Windows device name", await zip([{ name: "docs/Con.txt", data: "x" }]), /unsafe path/],
  ];
  for (const [label, bytes, reason] of cases) {
    await t.step(`${label} is 422 archive_rejected`, async () => {
      const res = await upload(w, bytes, "bundle.zip");
      assertMatch(String((await json(res.clone())).detail ?? ""), reason);
      await assertProblem(res, 422, "archive_rejected");
    });
  }
  await t.step(
    "a zip bomb declaring a small size is 422 (sizes are counted, not trusted)",
    async () => {
      const archive = await zip([{
        name: "zeros.bin",
        data: new Uint8Array(20 * 1024 * 1024),
        options: { dataDescriptor: false },
      }]);
      const view = new DataView(archive.buffer, archive.byteOffset);
      view.setUint32(22, 1000, true); // local header: uncompressed size
      for (let at = archive.byteLength - 22; at >= 0; at--) {
        if (view.getUint32(at, true) === 0x02014b50) {
          view.setUint32(at + 24, 1000, true); // central directory: uncompressed size
          break;
        }
      }
      const res = await upload(w, archive, "bomb.zip");
      assertMatch(String((await json(res.clone())).detail ?? ""), /past its declared size/);
      await assertProblem(res, 422, "archive_rejected");
    },
  );
  await t.step("an ordinary archive is still accepted", async () => {
    const ok = await zip([{ name: "docs/readme.txt", data: "hello" }, {
      name: "img.png",
      data: png(),
    }]);
    assertEquals((await upload(w, ok, "ok.zip")).status, 201);
  });
});

Deno.test("POST /uploads answers a 15 KiB adversarial filename at once (quadratic regex, #10 finding 5)", async () => {
  await using w = await world();
  // busboy caps a part header at 16 KiB, so this is about the longest name a form can carry.
  const filename = "a" + " .".repeat(7600) + "x.png";
  await upload(w, png(), "warm-up.png");
  const started = performance.now();
  const res = await upload(w, png(), filename);
  const ms = performance.now() - started;
  assertEquals(res.status, 201, await res.clone().text());
  // The old filename trim alone took ~250-500 ms on this name.
  assert(ms < 150, `${ms.toFixed(1)} ms`);
  const stored = String((await json(res)).filename);
  assertMatch(stored, /^a[ .]*\.png$/);
  assert(new TextEncoder().encode(stored).byteLength <= 255);
});
