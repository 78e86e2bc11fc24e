import { parseCommand } from "../server/cli.ts";
import { COMMANDS } from "../server/commands/mod.ts";
import { ALERT_RUNBOOKS } from "../services/ops/alerts.ts";
import { DEFAULT_RULES } from "../services/ops/intrusion.ts";
import { assert } from "./_helpers/assert.ts";

const DIR = new URL("../docs/runbooks/", import.meta.url);

Deno.test("every alert links to a runbook that exists", async () => {
  for (const rule of DEFAULT_RULES) {
    const file = ALERT_RUNBOOKS[rule.name];
    assert(file !== undefined, `no runbook for alert ${rule.name}`);
    await Deno.stat(new URL(file, DIR));
  }
});

Deno.test("every bulwark command the runbooks name exists and parses", async () => {
  let checked = 0;
  for await (const entry of Deno.readDir(DIR)) {
    const text = await Deno.readTextFile(new URL(entry.name, DIR));
    for (const match of text.matchAll(/bulwark\s+([a-z][a-z-]*(?:\s+[a-z][a-z-]*)?)/g)) {
      const words = match[1]!.split(/\s+/);
      const parsed = parseCommand(words, COMMANDS);
      // Options may be missing here (they are elided in prose); the command itself must exist.
      assert(
        parsed.kind === "run" ||
          !/Unknown command/.test(parsed.kind === "usage-error" ? parsed.message : ""),
        `${entry.name}: bulwark ${match[1]}`,
      );
      checked++;
    }
  }
  assert(checked > 20, `only ${checked} commands found`);
});
