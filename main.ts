// deno-lint-ignore-file no-console -- the command line talks to its terminal.
import { runCli } from "./server/cli.ts";
import { COMMANDS } from "./server/commands/mod.ts";
import { stdinLineReader } from "./server/stdin.ts";

if (import.meta.main) {
  Deno.exit(
    await runCli(Deno.args, COMMANDS, {
      env: Deno.env.toObject(),
      io: {
        out: (line) => console.log(line),
        err: (line) => console.error(line),
        readLine: stdinLineReader(),
      },
    }),
  );
}
