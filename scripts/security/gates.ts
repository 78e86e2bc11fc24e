/**
 * The static security gates of `deno task security`: dependency pins and lockfile integrity,
 * the dependency audit (with its allowlist), the outdated report and SAST. Each returns a
 * {@linkcode GateResult}; `main.ts` prints them and decides the exit code.
 *
 * @module
 */

/** `pass` and `fail` are verdicts; `not-checked` is neither and is never counted as a pass. */
export type GateStatus = "pass" | "fail" | "not-checked" | "info";

/** The outcome of one gate. */
export interface GateResult {
  readonly name: string;
  readonly status: GateStatus;
  /** One line per finding or note, printed under the gate. */
  readonly details: readonly string[];
}

const ROOT = new URL("../../", import.meta.url);

/** Runs a command in the project root; output decoded. */
export async function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

// --- pins ----------------------------------------------------------------------

interface DenoJson {
  imports?: Record<string, string>;
}

interface DenoLock {
  specifiers?: Record<string, string>;
  npm?: Record<string, { integrity?: string }>;
}

/**
 * Every import in deno.json is an exact `npm:name@x.y.z` (no ranges, no other registries), each
 * is resolved in deno.lock, and every npm package in the lock carries an integrity hash.
 */
export function checkPins(denoJson: DenoJson, lock: DenoLock): GateResult {
  const problems: string[] = [];
  for (const [alias, specifier] of Object.entries(denoJson.imports ?? {})) {
    const exact = /^npm:(@?[^@]+)@(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$/.exec(specifier);
    if (exact === null) {
      problems.push(`${alias}: "${specifier}" is not an exact npm:name@x.y.z pin`);
      continue;
    }
    if (lock.specifiers?.[specifier] === undefined) {
      problems.push(`${alias}: "${specifier}" is missing from deno.lock (run deno install)`);
    }
  }
  for (const [pkg, entry] of Object.entries(lock.npm ?? {})) {
    if (!/^sha512-[A-Za-z0-9+/]+=*$/.test(entry.integrity ?? "")) {
      problems.push(`deno.lock: ${pkg} has no sha512 integrity`);
    }
  }
  return {
    name: "dependency pins",
    status: problems.length === 0 ? "pass" : "fail",
    details: problems.length === 0
      ? [
        `${Object.keys(denoJson.imports ?? {}).length} imports pinned exactly, ${
          Object.keys(lock.npm ?? {}).length
        } locked packages with integrity`,
      ]
      : problems,
  };
}

// --- audit ---------------------------------------------------------------------

/** One advisory `deno audit` reported. */
export interface AuditFinding {
  readonly title: string;
  readonly severity: string;
  readonly package: string;
  /** Advisory URL (GHSA…); allowlist entries match on it or on the GHSA/CVE id inside it. */
  readonly info: string;
}

/** An accepted advisory: why, and until when. */
export interface AllowlistEntry {
  readonly advisory: string;
  readonly package: string;
  readonly reason: string;
  /** `YYYY-MM-DD`; after it the entry no longer applies and the finding fails again. */
  readonly expires: string;
}

/** Parses `deno audit`'s boxed report (`╭ title`, `│ Severity: …`, `│ Package: …`, `│ Info: …`). */
export function parseAuditReport(text: string): AuditFinding[] {
  const findings: AuditFinding[] = [];
  let current: Record<string, string> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("╭")) {
      current = { title: line.slice(1).trim() };
      continue;
    }
    if (current === undefined) continue;
    const field = /^│\s*(Severity|Package|Info):\s*(.+)$/.exec(line);
    if (field !== null) current[field[1]!.toLowerCase()] = field[2]!.trim();
    if (line.startsWith("╰")) {
      findings.push({
        title: current.title ?? "",
        severity: current.severity ?? "unknown",
        package: current.package ?? "unknown",
        info: current.info ?? "",
      });
      current = undefined;
    }
  }
  return findings;
}

/** Splits findings into accepted (a live allowlist entry) and failing; expired entries fail. */
export function applyAllowlist(
  findings: readonly AuditFinding[],
  allowlist: readonly AllowlistEntry[],
  today: string,
): { failing: string[]; accepted: string[] } {
  const failing: string[] = [];
  const accepted: string[] = [];
  for (const f of findings) {
    const entry = allowlist.find((e) => e.package === f.package && f.info.includes(e.advisory));
    const label = `${f.severity.toUpperCase()} ${f.package}: ${f.title} (${f.info})`;
    if (entry === undefined) failing.push(label);
    else if (entry.expires < today) {
      failing.push(`${label} — allowlist entry expired ${entry.expires}`);
    } else accepted.push(`${label} — accepted until ${entry.expires}: ${entry.reason}`);
  }
  for (const e of allowlist) {
    if (!e.reason.trim() || !/^\d{4}-\d{2}-\d{2}$/.test(e.expires)) {
      failing.push(`allowlist entry ${e.advisory} needs a reason and an expires date`);
    }
  }
  return { failing, accepted };
}

/** What an unreachable advisory service looks like in `deno audit`'s error output. */
const UNREACHABLE =
  /error sending request|Failed to get data from the registry|dns error|connection refused|UnknownIssuer|timed out/i;

/** Message printed when the advisory service cannot be reached. */
export const AUDIT_NOT_CHECKED = "dependency audit: NOT CHECKED (advisory service unreachable)";

/**
 * `deno audit --level=high` over deno.lock, minus live allowlist entries. Never uses
 * `--ignore-registry-errors`: an unreachable service is `not-checked`, not a pass.
 */
export async function auditGate(
  allowlist: readonly AllowlistEntry[],
  today: string,
  audit: () => Promise<{ code: number; stdout: string; stderr: string }> = () =>
    run(Deno.execPath(), ["audit", "--level=high"]),
): Promise<GateResult> {
  const out = await audit();
  const text = `${out.stdout}\n${out.stderr}`;
  const findings = parseAuditReport(text);
  if (out.code !== 0 && findings.length === 0) {
    if (UNREACHABLE.test(text)) {
      return {
        name: "dependency audit",
        status: "not-checked",
        details: [AUDIT_NOT_CHECKED, firstLine(out.stderr || out.stdout)],
      };
    }
    return { name: "dependency audit", status: "fail", details: [firstLine(text)] };
  }
  const { failing, accepted } = applyAllowlist(findings, allowlist, today);
  return {
    name: "dependency audit",
    status: failing.length === 0 ? "pass" : "fail",
    details: [
      ...failing,
      ...accepted,
      ...(findings.length === 0 ? ["no HIGH/CRITICAL advisory"] : []),
    ],
  };
}

function firstLine(text: string): string {
  return text.trim().split("\n").find((l) => l.trim() !== "")?.trim() ?? "";
}

// --- outdated ------------------------------------------------------------------

/** `deno outdated`, for the report only: a newer version is a prompt, not a failure. */
export async function outdatedReport(): Promise<GateResult> {
  const out = await run(Deno.execPath(), ["outdated"]);
  const rows = out.stdout.split("\n").filter((l) => l.includes("npm:"));
  if (out.code !== 0 && rows.length === 0) {
    return {
      name: "outdated",
      status: "info",
      details: [`not available: ${firstLine(out.stderr)}`],
    };
  }
  return {
    name: "outdated",
    status: "info",
    details: rows.length === 0 ? ["every dependency is current"] : rows.map((r) => r.trim()),
  };
}

// --- SAST ----------------------------------------------------------------------

/**
 * `deno lint` with the security plugin (`lint_plugin.ts`), and no suppression without a reason:
 * every `deno-lint-ignore` must say why after ` -- `.
 */
export async function sastGate(paths: string[] = []): Promise<GateResult> {
  const lint = await run(Deno.execPath(), ["lint", ...paths]);
  const details: string[] = [];
  if (lint.code !== 0) {
    details.push(
      ...`${lint.stdout}\n${lint.stderr}`.split("\n")
        .filter((l) => /^error\[|-->/.test(l.trim()))
        .map((l) => l.trim()),
    );
    if (details.length === 0) details.push(firstLine(lint.stderr));
  }
  details.push(...await unexplainedSuppressions(paths.length === 0 ? ["."] : paths));
  return {
    name: "SAST (deno lint + security rules)",
    status: details.length === 0 ? "pass" : "fail",
    details,
  };
}

/** `deno-lint-ignore` comments with no ` -- reason`. */
export async function unexplainedSuppressions(paths: string[]): Promise<string[]> {
  const found: string[] = [];
  const visit = async (path: string): Promise<void> => {
    const stat = await Deno.stat(path);
    if (stat.isDirectory) {
      for await (const entry of Deno.readDir(path)) {
        if (/^(\.|node_modules$|data$|dist$)/.test(entry.name)) continue;
        await visit(`${path}/${entry.name}`);
      }
      return;
    }
    if (!/\.(ts|tsx|js|mjs)$/.test(path)) return;
    const lines = (await Deno.readTextFile(path)).split("\n");
    lines.forEach((line, i) => {
      // Directives stand on a line of their own; this skips the text inside strings.
      const m = /^\s*\/\/\s*deno-lint-ignore(-file)?\b(.*)$/.exec(line);
      if (m !== null && !/\s--\s*\S/.test(m[2] ?? "")) {
        found.push(`${path}:${i + 1}: deno-lint-ignore without " -- reason"`);
      }
    });
  };
  for (const p of paths) await visit(new URL(p, ROOT).pathname);
  return found;
}
