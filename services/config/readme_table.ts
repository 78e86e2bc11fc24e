// deno-lint-ignore-file no-console -- command-line output
/**
 * The README "Configuration" table, generated from the declarations in `settings.ts`.
 *
 * `deno run -A services/config/readme_table.ts` rewrites the table in README.md;
 * `--check` only reports (exit 1) when README.md and the declarations disagree.
 *
 * @module
 */
import { type Setting, settingEntries } from "./settings.ts";

const HEADER = ["name", "default", "meaning"] as const;
const HEADING = "## Configuration";

/** README.md of this repository. */
export const README_URL = new URL("../../README.md", import.meta.url);

/** The README "default" cell: `defaultDoc`, else the schema's default, else "—". */
export function defaultCell(setting: Setting): string {
  if (setting.defaultDoc !== undefined) return setting.defaultDoc;
  const parsed = setting.schema.safeParse(undefined);
  if (!parsed.success || parsed.data === undefined) return "—";
  const value = Array.isArray(parsed.data) ? parsed.data.join(" ") : String(parsed.data);
  return value === "" ? "—" : `\`${value}\``;
}

/** One `[name, default, meaning]` row per setting, in declaration order. */
export function tableRows(): string[][] {
  return settingEntries().map(([name, s]) => [`\`${name}\``, defaultCell(s), s.doc]);
}

/** The Markdown table, aligned the way `deno fmt` leaves it. */
export function renderTable(rows: readonly (readonly string[])[] = tableRows()): string {
  const cells = [[...HEADER], ...rows.map((row) => row.map((c) => c.replaceAll("|", "\\|")))];
  const widths = HEADER.map((_, i) => Math.max(...cells.map((row) => width(row[i] ?? ""))));
  const line = (row: readonly string[]) =>
    `| ${row.map((c, i) => c + " ".repeat((widths[i] ?? 0) - width(c))).join(" | ")} |`;
  const [head, ...body] = cells;
  return [line(head ?? []), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}

/** Where the table under the "Configuration" heading sits, as line indexes `[start, end)`. */
function tableSpan(lines: readonly string[]): [number, number] {
  const heading = lines.findIndex((l) => l.trim() === HEADING);
  if (heading < 0) throw new Error(`README.md has no "${HEADING}" heading`);
  let start = heading + 1;
  while (start < lines.length && !lines[start]?.startsWith("|")) {
    if (lines[start]?.startsWith("## ")) throw new Error(`"${HEADING}" has no table`);
    start++;
  }
  let end = start;
  while (end < lines.length && lines[end]?.startsWith("|")) end++;
  if (start === end) throw new Error(`"${HEADING}" has no table`);
  return [start, end];
}

/** The cells of the README's configuration table, header and separator row left out. */
export function readmeRows(readme: string): string[][] {
  const lines = readme.split("\n");
  const [start, end] = tableSpan(lines);
  return lines.slice(start + 2, end).map((line) =>
    line.trim().replace(/^\|/, "").replace(/\|$/, "")
      .split(/(?<!\\)\|/).map((cell) => cell.trim().replaceAll("\\|", "|"))
  );
}

/** `readme` with its configuration table replaced by `table`. */
export function replaceTable(readme: string, table: string = renderTable()): string {
  const lines = readme.split("\n");
  const [start, end] = tableSpan(lines);
  return [...lines.slice(0, start), table, ...lines.slice(end)].join("\n");
}

function width(text: string): number {
  return [...text].length;
}

if (import.meta.main) {
  const readme = Deno.readTextFileSync(README_URL);
  const updated = replaceTable(readme);
  if (updated === readme) {
    console.log("README.md configuration table is up to date");
  } else if (Deno.args.includes("--check")) {
    console.error("README.md configuration table is out of date: run without --check");
    Deno.exit(1);
  } else {
    Deno.writeTextFileSync(README_URL, updated);
    console.log("README.md configuration table written");
  }
}
