// scripts/ipcscope.service: systemd accepts it, and it passes only flags `ipcscope serve` has.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinary, ROOT, runBinary, testIf } from "../helpers.ts";

const UNIT = readFileSync(join(ROOT, "scripts", "ipcscope.service"), "utf8");
const INSTALLED = "/usr/local/bin/ipcscope";

/** The ExecStart command line, continuation lines joined. */
function execStart(unit: string): string {
  const line = unit.replace(/\\\n\s*/g, " ").split("\n").find((l) => l.startsWith("ExecStart="));
  if (!line) throw new Error("no ExecStart= in the unit");
  return line.slice("ExecStart=".length);
}

/** The --flags the unit passes: on ExecStart, and in the IPCSCOPE_OPTS= examples of its comments. */
function flagsOf(unit: string): string[] {
  const examples = unit.split("\n").filter((l) => /^#\s+IPCSCOPE_OPTS=/.test(l));
  return [...new Set([execStart(unit), ...examples].flatMap((text) => text.match(/--[a-z][a-z-]*/g) ?? []))];
}

const hasSystemdAnalyze = Bun.which("systemd-analyze") !== null;

describe("scripts/ipcscope.service", () => {
  test("runs the installed binary's serve over HTTP with a token file and the state directory systemd creates", () => {
    const command = execStart(UNIT);
    expect(command.startsWith(`${INSTALLED} serve --http `)).toBe(true);
    expect(command).toContain("--token-file /etc/ipcscope/token");
    expect(command).toContain("--state-dir /var/lib/ipcscope");
    expect(UNIT).toMatch(/^StateDirectory=ipcscope$/m);
  });

  testIf(hasSystemdAnalyze, "systemd-analyze")("systemd-analyze verify accepts it (with ExecStart pointing at the built binary)", async () => {
    // verify checks that ExecStart's program exists and is executable: use the one just built.
    const dir = mkdtempSync(join(tmpdir(), "ipcscope-unit-"));
    try {
      const path = join(dir, "ipcscope.service");
      writeFileSync(path, UNIT.replaceAll(INSTALLED, await ensureBinary()));
      const run = Bun.spawnSync(["systemd-analyze", "verify", path], { stdout: "pipe", stderr: "pipe" });
      const output = `${run.stdout.toString()}${run.stderr.toString()}`;
      // verify exits 0 on an unknown key or a bad value, but says so in a line naming the file;
      // lines about other units (the host's own) are not ours to judge.
      expect(output.split("\n").filter((line) => line.includes("ipcscope"))).toEqual([]);
      expect(run.exitCode).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Fails until the serve flags of the authentication work (--token-file, --tls-cert, --tls-key) are merged.
  test("every flag it passes is one `ipcscope serve --help` lists", async () => {
    const help = await runBinary(["serve", "--help"], { env: { NO_COLOR: "1" } });
    expect(help.code).toBe(0);
    // citty colours its help; compare without the escapes.
    const text = `${help.stdout}${help.stderr}`.replace(/\x1b\[[0-9;]*m/g, "");
    const flags = flagsOf(UNIT);
    expect(flags).toContain("--http");
    expect(flags.filter((flag) => !new RegExp(`${flag}(?![a-z-])`).test(text))).toEqual([]);
  });
});
