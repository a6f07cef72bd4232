// docs/structure.md names every source, script, probe, bench and test file, so a newcomer's map stays true.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import serve from "../../src/commands/serve.ts";
import { subCommands } from "../../src/main.ts";
import { ROOT } from "../helpers.ts";

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(ROOT, dir, name);
    return statSync(path).isDirectory() ? files(relative(ROOT, path)) : [relative(ROOT, path)];
  });
}

test("docs/structure.md lists every file under src, probes, scripts, bench and test (by folder glob for fixtures)", () => {
  const structure = readFileSync(join(ROOT, "docs", "structure.md"), "utf8");
  const listed = (path: string) =>
    structure.includes(`${path} `) ||
    /^test\/(unit|__toolsnaps__|fixtures\/(os-release|ss|proc|bpftool|tracefs))\//.test(path);
  const missing = ["src", "probes", "scripts", "bench", "test"].flatMap(files).filter((path) => !listed(path));
  expect(missing).toEqual([]);
});

test("the README documents every command and every flag of serve", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const flags = Object.keys(serve.args ?? {}).map((name) => `--${name}`);
  const commands = Object.keys(subCommands).map((name) => `ipcscope ${name}`);
  const missing = ["scripts/serve", "scripts/test", ...commands, ...flags, "--quick", "--json", "get_system_info"].filter((text) => !readme.includes(text));
  expect(missing).toEqual([]);
});
