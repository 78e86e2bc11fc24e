import { createHash } from "node:crypto";
import { createClamdScanner, type VirusScanner } from "../../services/uploads/scanner.ts";
import { promote, signUp } from "../_helpers/accounts.ts";
import { assert, assertEquals, assertMatch, assertProblem } from "../_helpers/assert.ts";
import { clamdUnavailableReason, startClamd } from "../_helpers/clamd.ts";
import { EICAR, jpeg, pdf, png, streamedUpload, zip } from "../_helpers/files.ts";
import { bearer, json, jsonInit } from "../_helpers/http.ts";
import { memoryLogger, openWorld } from "../_helpers/world.ts";

type StoreKind = "file" | "kv";
const MiB = 1024 * 1024;

/** A world storing uploads in `store` (files under a temporary directory), with one owner. */
async function world(
  store: StoreKind,
  env: Record<string, string> = {},
  scanner: VirusScanner | null = null,
) {
  await using cleanup = new AsyncDisposableStack();
  const dir = await Deno.makeTempDir({ prefix: "bulwark_uploads_" });
  cleanup.defer(() => Deno.remove(dir, { recursive: true }));
  const w = cleanup.use(
    await openWorld({
      env: {
        UPLOAD_STORE: store,
        UPLOAD_DIR: `${dir}/uploads`,
        RATE_LIMIT_UPLOADS: "1000/minute",
        ...env,
      },
      scanner,
    }),
  );
  const owner = await signUp(w.app);
  // From here the caller's `await using` closes the world, then removes the directory.
  const owned = cleanup.move();
  return { ...w, dir, owner, [Symbol.asyncDispose]: () => owned.disposeAsync() };
}

type World = Awaited<ReturnType<typeof world>>;

function form(bytes: Uint8Array | string, filename: string, field = "file"): FormData {
  const body = new FormData();
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  body.append(field, new File([data as Uint8Array<ArrayBuffer>], filename));
  return body;
}

async function upload(w: World, bytes: Uint8Array | string, filename: string, token?: string) {
  return await w.app.request("/uploads", {
    method: "POST",
    body: form(bytes, filename),
    headers: bearer(token ?? w.owner.access),
  });
}

async function uploaded(w: World, bytes: Uint8Array | string, filename: string) {
  const res = await upload(w, bytes, filename);
  assertEquals(res.status, 201, await res.clone().text());
  return await json(res);
}

/** Every stored blob byte, in either store: a test's proof that nothing was left behind. */
async function storedBlobs(w: World, store: StoreKind): Promise<string[]> {
  const names: string[] = [];
  if (store === "file") {
    for (const sub of ["", "/.staging"]) {
      try {
        for await (const e of Deno.readDir(`${w.dir}/uploads${sub}`)) {
          if (e.isFile) names.push(`${sub}/${e.name}`);
        }
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
  } else {
    for (const prefix of ["upload_blob_chunks", "upload_blobs", "upload_blobs_pending"]) {
      for await (const e of w.kv.list({ prefix: [prefix] })) names.push(e.key.join("/"));
    }
  }
  return names;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

for (const store of ["file", "kv"] as const) {
  Deno.test(`POST /uploads stores real files (${store} store)`, async (t) => {
    await using w = await world(store);
    const cases: [string, Uint8Array, string][] = [
      ["photo.png", png(), "image/png"],
      ["photo.JPG", jpeg(), "image/jpeg"],
      ["photo.jpeg", jpeg(), "image/jpeg"],
      ["doc.pdf", pdf(), "application/pdf"],
      ["bundle.zip", await zip([{ name: "docs/readme.txt", data: "hello" }]), "application/zip"],
    ];
    for (const [name, bytes, type] of cases) {
      await t.step(`${name} is 201 with the detected type`, async () => {
        const res = await upload(w, bytes, name);
        assertEquals(res.status, 201, await res.clone().text());
        assertMatch(res.headers.get("content-type") ?? "", /^application\/json/);
        const body = await json(res);
        assertEquals(
          Object.keys(body).sort(),
          ["content_type", "created_at", "filename", "id", "sha256", "size"],
        );
        assertMatch(String(body.id), /^[A-Za-z0-9_-]{22}$/);
        assertEquals(res.headers.get("location"), `/uploads/${body.id}`);
        assertEquals(body.filename, name);
        assertEquals(body.content_type, type);
        assertEquals(body.size, bytes.byteLength);
        assertEquals(body.sha256, sha256(bytes));
        assertEquals(body.created_at, "2026-01-01T00:00:00.000Z");
      });
    }
    await t.step("GET /uploads lists the caller's uploads", async () => {
      const res = await w.app.request("/uploads", { headers: bearer(w.owner.access) });
      assertEquals(res.status, 200);
      assertEquals((await res.json() as unknown[]).length, cases.length);
    });
    if (store === "file") {
      await t.step("stored objects get random names, mode 0600 in a 0700 directory", async () => {
        const dirInfo = await Deno.stat(`${w.dir}/uploads`);
        assertEquals((dirInfo.mode ?? 0) & 0o777, 0o700);
        for (const name of await storedBlobs(w, store)) {
          assertMatch(name, /^\/[0-9a-z]{10}[0-9a-f]{32}$/);
          assertEquals(((await Deno.stat(`${w.dir}/uploads${name}`)).mode ?? 0) & 0o777, 0o600);
        }
      });
    }
  });

  Deno.test(`GET /uploads/{id}/content streams the bytes with safe headers (${store})`, async () => {
    await using w = await world(store);
    const bytes = png({ width: 300, height: 300, minBytes: 300_000 });
    const created = await uploaded(w, bytes, 'Ünïcødé "report" 2026.png');
    const res = await w.app.request(`/uploads/${created.id}/content`, {
      headers: bearer(w.owner.access),
    });
    assertEquals(res.status, 200);
    assertEquals(res.headers.get("content-type"), "image/png");
    assertEquals(res.headers.get("content-length"), String(bytes.byteLength));
    assertEquals(res.headers.get("x-content-type-options"), "nosniff");
    assertEquals(res.headers.get("content-security-policy"), "default-src 'none'; sandbox");
    assertEquals(
      res.headers.get("content-disposition"),
      `attachment; filename="_n_c_d_ _report_ 2026.png"; ` +
        `filename*=UTF-8''%C3%9Cn%C3%AFc%C3%B8d%C3%A9%20_report_%202026.png`,
    );
    assert(res.body !== null);
    assertEquals(await res.bytes(), bytes);
    const meta = await w.app.request(`/uploads/${created.id}`, { headers: bearer(w.owner.access) });
    assertEquals(meta.status, 200);
    assertEquals(await json(meta), created);
  });

  Deno.test(`POST /uploads refuses content that does not match its name (${store})`, async (t) => {
    await using w = await world(store);
    const html = "<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>";
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>';
    const pngWithScript = new Uint8Array([
      ...png(),
      ...new TextEncoder().encode("<script>alert(1)</script>"),
    ]);
    const pngWithZip = new Uint8Array([
      ...png(),
      ...await zip([{ name: "payload.txt", data: "x" }]),
    ]);
    const gifScript = "GIF89a/*\x01\x00\x01\x00\x00\x00\x00*/=1;<script>alert(1)</script>";
    const cases: [string, string, Uint8Array | string, number, string][] = [
      ["HTML named .png", "index.png", html, 415, "unsupported_media_type"],
      ["PNG named .exe", "setup.exe", png(), 415, "unsupported_media_type"],
      ["PNG named .html", "page.html", png(), 415, "unsupported_media_type"],
      ["SVG named .svg", "logo.svg", svg, 415, "unsupported_media_type"],
      ["SVG named .png", "logo.png", svg, 415, "unsupported_media_type"],
      ["a PNG named .pdf", "doc.pdf", png(), 415, "unsupported_media_type"],
      [
        "a PNG carrying a script (polyglot)",
        "poly.png",
        pngWithScript,
        415,
        "unsupported_media_type",
      ],
      [
        "a PNG with a zip appended (polyglot)",
        "poly2.png",
        pngWithZip,
        415,
        "unsupported_media_type",
      ],
      ["a GIF/JavaScript polyglot", "poly.gif", gifScript, 415, "unsupported_media_type"],
      [
        "an ELF executable named .png",
        "elf.png",
        "\x7fELF\x02\x01\x01" + "\0".repeat(60),
        415,
        "unsupported_media_type",
      ],
      [
        "a shell script named .zip",
        "run.zip",
        "#!/bin/sh\nrm -rf /\n",
        415,
        "unsupported_media_type",
      ],
      ["an empty file", "empty.png", "", 422, "validation_failed"],
      ["no extension", "README", png(), 415, "unsupported_media_type"],
    ];
    for (const [label, filename, bytes, status, code] of cases) {
      await t.step(`${label} is ${status}`, async () => {
        await assertProblem(await upload(w, bytes, filename), status, code);
      });
    }
    await t.step("nothing was stored", async () => {
      assertEquals(await storedBlobs(w, store), []);
      const list = await w.app.request("/uploads", { headers: bearer(w.owner.access) });
      assertEquals(await list.json(), []);
    });
  });

  Deno.test(`POST /uploads cuts off an oversized body while streaming (${store})`, async (t) => {
    await using w = await world(store);
    async function send(size: number, filename?: string) {
      const s = streamedUpload(size, filename);
      const res = await w.app.request("/uploads", {
        method: "POST",
        body: s.body,
        headers: { ...bearer(w.owner.access), "content-type": s.contentType },
        duplex: "half",
      } as RequestInit);
      return { res, pulled: s.pulled() };
    }
    await t.step("5 MiB + 1 byte is 413 payload_too_large", async () => {
      const { res } = await send(5 * MiB + 1);
      await assertProblem(res, 413, "payload_too_large");
      assertEquals(await storedBlobs(w, store), []);
    });
    await t.step("a 50 MiB body is cut at the limit, not read in full", async () => {
      const { res, pulled } = await send(50 * MiB);
      await assertProblem(res, 413, "payload_too_large");
      assert(pulled < 5 * MiB + 256 * 1024, `read ${pulled} bytes`);
      assertEquals(await storedBlobs(w, store), []);
    });
    await t.step("a declared Content-Length over the limit is refused before reading", async () => {
      const res = await w.app.request("/uploads", {
        method: "POST",
        body: form(png(), "a.png"),
        headers: { ...bearer(w.owner.access), "content-length": String(6 * MiB) },
      });
      await assertProblem(res, 413, "payload_too_large");
    });
    await t.step("exactly 5 MiB is accepted", async () => {
      const { res } = await send(5 * MiB);
      assertEquals(res.status, 201, await res.clone().text());
      assertEquals((await json(res)).size, 5 * MiB);
    });
  });

  Deno.test(`POST /uploads keeps only a sanitized filename (${store})`, async (t) => {
    await using w = await world(store);
    const cases: [string, string][] = [
      ["../../../etc/passwd.png", "passwd.png"],
      ["..\\..\\windows\\system32\\evil.png", "evil.png"],
      ["/abs/path/x.png", "x.png"],
      ["C:\\Users\\me\\photo.png", "photo.png"],
      ["inv\u202Egnp.exe.png", "invgnp.exe.png"],
      ["tab\tand\nnewline.png", "tab and newline.png"],
      ["...hidden.png", "hidden.png"],
      ["a".repeat(1000) + ".png", "a".repeat(196) + ".png"],
    ];
    for (const [raw, expected] of cases) {
      await t.step(JSON.stringify(raw.slice(0, 40)), async () => {
        const body = await uploaded(w, png(), raw);
        assertEquals(body.filename, expected);
      });
    }
    if (store === "file") {
      await t.step("every object sits directly in UPLOAD_DIR under a random name", async () => {
        const names = await storedBlobs(w, store);
        assertEquals(names.length, cases.length);
        for (const name of names) assertMatch(name, /^\/[0-9a-z]{42}$/);
        const outside: string[] = [];
        for await (const e of Deno.readDir(w.dir)) outside.push(e.name);
        assertEquals(outside, ["uploads"]);
      });
    }
  });

  Deno.test(`POST /uploads inspects zip archives (${store})`, async (t) => {
    await using w = await world(store);
    const zeros = new Uint8Array(20 * MiB);
    const cases: [string, Promise<Uint8Array>, RegExp][] = [
      ["zip slip (..)", zip([{ name: "../../evil.sh.txt", data: "x" }]), /unsafe path/],
      ["absolute path", zip([{ name: "/etc/cron.d/x", data: "x" }]), /unsafe path/],
      ["drive path", zip([{ name: "C:/Windows/x.txt", data: "x" }]), /unsafe path/],
      ["backslash climb", zip([{ name: "a\\..\\..\\x.txt", data: "x" }]), /unsafe path/],
      ["zip bomb (high ratio)", zip([{ name: "zeros.bin", data: zeros }]), /ratio/],
      ["nested zip", zip([{ name: "inner.zip", data: new Uint8Array(10) }]), /nested/],
      ["executable", zip([{ name: "setup.exe", data: "MZ" }]), /executable/],
      [
        "too many entries",
        zip(Array.from({ length: 1001 }, (_, i) => ({ name: `f${i}.txt`, data: "x" }))),
        /entries/,
      ],
      [
        "symbolic link",
        zip([{
          name: "link",
          data: "/etc/passwd",
          options: { externalFileAttributes: 0o120777 << 16, msDosCompatible: false },
        }]),
        /symbolic link/,
      ],
    ];
    for (const [label, bytes, reason] of cases) {
      await t.step(`${label} is 422 archive_rejected`, async () => {
        const res = await upload(w, await bytes, "archive.zip");
        assertEquals(res.status, 422, await res.clone().text());
        const body = await json(res);
        assertEquals(body.code, "archive_rejected");
        assertMatch(String(body.detail), reason);
      });
    }
    await t.step("no bytes are left behind", async () => {
      assertEquals(await storedBlobs(w, store), []);
    });
  });

  Deno.test(`uploads are visible to their owner and admins only (${store})`, async (t) => {
    await using w = await world(store);
    const created = await uploaded(w, png(), "mine.png");
    const other = await signUp(w.app);
    const paths = [`/uploads/${created.id}`, `/uploads/${created.id}/content`];
    await t.step("another user gets 404 for read and delete", async () => {
      for (const path of paths) {
        await assertProblem(
          await w.app.request(path, { headers: bearer(other.access) }),
          404,
          "not_found",
        );
      }
      await assertProblem(
        await w.app.request(paths[0]!, { method: "DELETE", headers: bearer(other.access) }),
        404,
        "not_found",
      );
      const list = await w.app.request("/uploads", { headers: bearer(other.access) });
      assertEquals(await list.json(), []);
    });
    await t.step("an unknown id answers the same 404", async () => {
      const res = await w.app.request("/uploads/AAAAAAAAAAAAAAAAAAAAAA", {
        headers: bearer(other.access),
      });
      await assertProblem(res, 404, "not_found");
    });
    await t.step("anonymous callers get 401", async () => {
      await assertProblem(await w.app.request(paths[1]!), 401, "token_invalid");
      await assertProblem(
        await w.app.request("/uploads", { method: "POST", body: form(png(), "a.png") }),
        401,
        "token_invalid",
      );
    });
    await t.step("an API key without uploads:write cannot upload", async () => {
      const keyRes = await w.app.request(
        "/api-keys",
        jsonInit("POST", { name: "ro", scopes: ["uploads:read"] }, bearer(w.owner.access)),
      );
      const key = String((await json(keyRes)).key);
      await assertProblem(
        await w.app.request("/uploads", {
          method: "POST",
          body: form(png(), "a.png"),
          headers: { "x-api-key": key },
        }),
        403,
        "insufficient_scope",
      );
      const read = await w.app.request(paths[0]!, { headers: { "x-api-key": key } });
      assertEquals(read.status, 200);
      await read.body?.cancel();
    });
    await t.step("an admin can read and delete it", async () => {
      const admin = await promote(w, await signUp(w.app), "admin");
      const res = await w.app.request(paths[1]!, { headers: bearer(admin) });
      assertEquals(res.status, 200);
      await res.body?.cancel();
      const del = await w.app.request(paths[0]!, { method: "DELETE", headers: bearer(admin) });
      assertEquals(del.status, 204);
    });
    await t.step("once deleted it is gone, bytes included", async () => {
      await assertProblem(
        await w.app.request(paths[0]!, { headers: bearer(w.owner.access) }),
        404,
        "not_found",
      );
      assertEquals(await storedBlobs(w, store), []);
    });
  });

  Deno.test(`DELETE /uploads/{id} removes the file and its metadata (${store})`, async () => {
    await using w = await world(store);
    const created = await uploaded(w, pdf(), "a.pdf");
    const res = await w.app.request(`/uploads/${created.id}`, {
      method: "DELETE",
      headers: bearer(w.owner.access),
    });
    assertEquals(res.status, 204);
    assertEquals(await storedBlobs(w, store), []);
    const again = await w.app.request(`/uploads/${created.id}`, {
      method: "DELETE",
      headers: bearer(w.owner.access),
    });
    await assertProblem(again, 404, "not_found");
  });

  Deno.test(`UPLOAD_QUOTA_BYTES refuses uploads past the quota (${store})`, async () => {
    const file = png({ minBytes: 4000 });
    await using w = await world(store, { UPLOAD_QUOTA_BYTES: String(file.byteLength * 2) });
    const first = await uploaded(w, file, "1.png");
    await uploaded(w, file, "2.png");
    await assertProblem(await upload(w, file, "3.png"), 413, "quota_exceeded");
    assertEquals((await storedBlobs(w, store)).length, store === "file" ? 2 : 2 + 2 + 0);
    const del = await w.app.request(`/uploads/${first.id}`, {
      method: "DELETE",
      headers: bearer(w.owner.access),
    });
    assertEquals(del.status, 204);
    await uploaded(w, file, "3.png");
    const other = await signUp(w.app);
    assertEquals((await upload(w, file, "x.png", other.access)).status, 201, "quotas are per user");
  });
}

Deno.test("POST /uploads refuses malformed forms", async (t) => {
  await using w = await world("file");
  await t.step("a JSON body is 415", async () => {
    const res = await w.app.request("/uploads", jsonInit("POST", {}, bearer(w.owner.access)));
    await assertProblem(res, 415, "unsupported_media_type");
  });
  await t.step("a form without the file field is 422", async () => {
    const res = await w.app.request("/uploads", {
      method: "POST",
      body: form(png(), "a.png", "other"),
      headers: bearer(w.owner.access),
    });
    await assertProblem(res, 422, "validation_failed");
  });
  await t.step("a truncated multipart body is 422", async () => {
    const res = await w.app.request("/uploads", {
      method: "POST",
      body: '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n\x89PNG',
      headers: { ...bearer(w.owner.access), "content-type": "multipart/form-data; boundary=xyz" },
    });
    await assertProblem(res, 422, "validation_failed");
  });
});

Deno.test("UPLOADS_PUBLIC_ORIGIN is advertised as the content link", async () => {
  await using w = await world("file", { UPLOADS_PUBLIC_ORIGIN: "https://usercontent.example.net" });
  const res = await upload(w, png(), "a.png");
  assertEquals(res.status, 201);
  const { id } = await json(res);
  assertEquals(
    res.headers.get("link"),
    `<https://usercontent.example.net/uploads/${id}/content>; rel="enclosure"`,
  );
});

const clamdReason = await clamdUnavailableReason();

Deno.test({
  name: "POST /uploads scans with a real clamd and fails closed",
  ignore: clamdReason !== null,
  async fn(t) {
    await using clamd = await startClamd();
    const scanner = createClamdScanner({
      address: clamd.address,
      logger: memoryLogger(),
      timeoutMs: 5000,
    });
    try {
      for (const store of ["file", "kv"] as const) {
        await using w = await world(store, {}, scanner);
        await t.step(`a clean file is stored (${store})`, async () => {
          await uploaded(w, png(), "clean.png");
        });
        await t.step(`EICAR inside a zip is 422 malware_detected, audited (${store})`, async () => {
          const bytes = await zip([{ name: "eicar.txt", data: EICAR }]);
          await assertProblem(await upload(w, bytes, "e.zip"), 422, "malware_detected");
          const events: Record<string, unknown>[] = [];
          for await (const e of w.kv.list<Record<string, unknown>>({ prefix: ["audit"] })) {
            events.push(e.value);
          }
          const hit = events.find((e) => e.type === "upload.malware_detected");
          assert(hit !== undefined);
          assertMatch(String((hit.details as { signature: string }).signature), /Eicar/);
        });
        await t.step(`a PDF carrying the EICAR string is 422 (${store})`, async () => {
          const bytes = new TextEncoder().encode(`%PDF-1.4\n${EICAR}\n%%EOF\n`);
          await assertProblem(await upload(w, bytes, "e.pdf"), 422, "malware_detected");
        });
        await t.step(`the plain EICAR string never passes the type check (${store})`, async () => {
          const before = await storedBlobs(w, store);
          await assertProblem(await upload(w, EICAR, "eicar.png"), 415, "unsupported_media_type");
          assertEquals(await storedBlobs(w, store), before);
        });
      }
      await using w = await world("file", {}, scanner);
      await t.step("with clamd stopped, uploads are 503 scanner_unavailable", async () => {
        await clamd.stop();
        await assertProblem(await upload(w, png(), "a.png"), 503, "scanner_unavailable");
        assertEquals(await storedBlobs(w, "file"), []);
      });
    } finally {
      scanner.close();
    }
  },
});

Deno.test("parallel uploads of one user all land (the usage counter is not a contention point)", async () => {
  await using w = await openWorld({ env: { RATE_LIMIT_UPLOADS: "1000/minute" } });
  const s = await signUp(w.app);
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => {
    const form = new FormData();
    form.append("file", new File([png() as BlobPart], `p${i}.png`, { type: "image/png" }));
    return w.app.request("/uploads", { method: "POST", body: form, headers: bearer(s.access) });
  }));
  assertEquals(results.map((r) => r.status), Array(8).fill(201));
  await Promise.all(results.map((r) => r.body?.cancel()));
});
