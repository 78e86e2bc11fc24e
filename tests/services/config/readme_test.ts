import { assertEquals } from "../../_helpers/assert.ts";
import {
  README_URL,
  readmeRows,
  renderTable,
  replaceTable,
  tableRows,
} from "../../../services/config/readme_table.ts";

const FIX = "run `deno run -A services/config/readme_table.ts` to regenerate it";

Deno.test("README configuration table matches the setting declarations", () => {
  const readme = Deno.readTextFileSync(README_URL);
  const expected = tableRows();
  const actual = readmeRows(readme);
  const names = (rows: string[][]) => rows.map((row) => row[0]);
  assertEquals(names(actual), names(expected), `README lists other settings: ${FIX}`);
  assertEquals(actual, expected, `README describes a setting differently: ${FIX}`);
});

Deno.test("readme_table.ts replaces only the configuration table", () => {
  const readme = [
    "# Title",
    "",
    "## Configuration",
    "",
    "Intro.",
    "",
    "| name | default | meaning |",
    "| - | - | - |",
    "| `OLD` | — | Gone. |",
    "",
    "## Next",
    "",
    "| other | table |",
    "| ----- | ----- |",
  ].join("\n");
  const table = renderTable([["`A`", "`1`", "Pipes | here."]]);
  const updated = replaceTable(readme, table);
  assertEquals(readmeRows(updated), [["`A`", "`1`", "Pipes | here."]]);
  assertEquals(updated.split("\n").slice(0, 6), readme.split("\n").slice(0, 6));
  assertEquals(updated.split("\n").slice(-5), readme.split("\n").slice(-5));
  assertEquals(replaceTable(updated, table), updated);
});
