/**
 * What `deno run main.ts` loads before it can answer its first request: the static module
 * graph of main.ts, from `deno info --json`. Heavy packages are imported on first use
 * (`await import` with literal specifiers, so `deno compile` still embeds them); this keeps
 * them out of the static graph, and test-only tools out of the server altogether.
 */
import { buildCompileArgs, V8_FLAGS } from "../../scripts/compile.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";

const ROOT = new URL("../../", import.meta.url);

/** Loaded on first use only; each must still be reachable through a dynamic import. */
const LAZY = [
  "sanitize-html", // notes and profile bios
  "@zxcvbn-ts/core", // the password policy
  "@zxcvbn-ts/language-common/src/passwords.json",
  "@zxcvbn-ts/language-en/src/commonWords.json",
  "acme-client", // ACME certificates
  "@peculiar/x509",
  "nodemailer", // the first mail
  "busboy", // the first upload
  "file-type",
  "@zip.js/zip.js",
  "bcrypt", // native bcrypt, loaded by the first hash
  "swagger-ui-dist/swagger-ui-bundle.js", // GET /docs assets
  "swagger-ui-dist/swagger-ui.css",
  "prom-client", // metrics: reports before it loads are kept and replayed
];

/**
 * Never in the server's graph, not even dynamically: test and tooling packages, and zxcvbn's
 * English index module (it keeps decompressed copies of the lists; the JSON sources are used).
 */
const NEVER = ["playwright-core", "oidc-provider", "fast-check", "@zxcvbn-ts/language-en"];

interface InfoDependency {
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface InfoModule {
  specifier: string;
  dependencies?: InfoDependency[];
}
interface Info {
  roots: string[];
  modules: InfoModule[];
  redirects: Record<string, string>;
}

async function moduleGraph(): Promise<Info> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", new URL("deno.json", ROOT).pathname, "main.ts"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout)) as Info;
}

/** `npm:/name@1.2.3/sub/path` → `name/sub/path`; other specifiers unchanged. */
function packagePath(specifier: string): string {
  const match = /^npm:\/?((?:@[^/]+\/)?[^@/]+)@[^/]+(\/.*)?$/.exec(specifier);
  return match === null ? specifier : `${match[1]}${match[2] ?? ""}`;
}

/** Every module reachable from the roots: static imports only, or dynamic ones too. */
function reachable(info: Info, withDynamic: boolean): Set<string> {
  const byUrl = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const pending = [...info.roots];
  while (pending.length > 0) {
    const raw = pending.pop()!;
    const url = info.redirects[raw] ?? raw;
    if (seen.has(url)) continue;
    seen.add(url);
    for (const dep of byUrl.get(url)?.dependencies ?? []) {
      if (dep.code !== undefined && (withDynamic || dep.isDynamic !== true)) {
        pending.push(dep.code.specifier);
      }
    }
  }
  return new Set([...seen].map(packagePath));
}

Deno.test("main.ts: heavy packages load on first use, test tools never", async (t) => {
  const info = await moduleGraph();
  const eager = reachable(info, false);
  const all = reachable(info, true);

  await t.step("the graph was read (hono and the routes are in it)", () => {
    assert(eager.has("hono"));
    assert([...eager].some((s) => s.endsWith("/routes/app.ts")));
  });
  await t.step("none of the lazily loaded packages is imported statically", () => {
    assertEquals(LAZY.filter((name) => eager.has(name)), []);
  });
  await t.step(
    "each is still in the graph through a dynamic import (deno compile embeds it)",
    () => {
      assertEquals(LAZY.filter((name) => !all.has(name)), []);
    },
  );
  await t.step("test and tooling packages are not in the graph at all", () => {
    assertEquals(NEVER.filter((name) => all.has(name)), []);
  });
});

Deno.test("deno task start and the compiled binary run with the same V8 heap bounds", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))) as {
    tasks: Record<string, string>;
  };
  for (const task of ["start", "dev"]) {
    assert(config.tasks[task]?.includes(` --v8-flags=${V8_FLAGS} `), `task ${task}`);
  }
  const args = buildCompileArgs({ output: "out", dataDir: "./data" }, []);
  assert(args.includes(`--v8-flags=${V8_FLAGS}`));
});
