// scripts/build --all: three release binaries of the right architectures, checksums that verify,
// nothing newer than glibc 2.17 required, and under the 120 MB budget.
import { expect, test } from "bun:test";
import { openSync, readSync, closeSync, statSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../helpers.ts";

const DIST = join(ROOT, "dist");
const MAX_BINARY_BYTES = 120 * 1024 * 1024;

/** e_machine of an ELF file: 62 is x86-64, 183 is AArch64. */
function elfMachine(path: string): number {
  const header = Buffer.alloc(20);
  const fd = openSync(path, "r");
  try {
    readSync(fd, header, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  expect(header.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
  return header.readUInt16LE(18);
}

test("scripts/build --all makes x64, x64-baseline and arm64 binaries with SHA256SUMS that verify", async () => {
  const build = Bun.spawn([join(ROOT, "scripts", "build"), "--all"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [code, stderr] = await Promise.all([build.exited, new Response(build.stderr).text()]);
  expect(code, stderr).toBe(0);
  const expected: Record<string, number> = { "ipcscope-linux-x64": 62, "ipcscope-linux-x64-baseline": 62, "ipcscope-linux-arm64": 183, ipcscope: process.arch === "arm64" ? 183 : 62 };
  for (const [name, machine] of Object.entries(expected)) {
    const path = join(DIST, name);
    expect(elfMachine(path)).toBe(machine);
    expect(statSync(path).size).toBeLessThan(MAX_BINARY_BYTES);
  }
  const sums = Bun.spawnSync(["sha256sum", "-c", "SHA256SUMS"], { cwd: DIST });
  expect(sums.exitCode, sums.stderr.toString()).toBe(0);
  expect(sums.stdout.toString().match(/: OK$/gm)).toHaveLength(3);
}, 120_000);

test("no binary needs a glibc newer than 2.17 (RHEL 8 has 2.28)", () => {
  const check = Bun.spawnSync([join(ROOT, "scripts", "check-glibc"), "dist/ipcscope", "dist/ipcscope-linux-x64", "dist/ipcscope-linux-x64-baseline", "dist/ipcscope-linux-arm64"], { cwd: ROOT });
  expect(check.exitCode, check.stdout.toString() + check.stderr.toString()).toBe(0);
});

test("the binary runs from any directory with nothing beside it (probes are embedded)", async () => {
  const proc = Bun.spawn([join(DIST, "ipcscope"), "doctor", "--json", "--quick"], { cwd: "/", stdout: "pipe", stderr: "pipe" });
  const info = JSON.parse(await new Response(proc.stdout).text());
  await proc.exited;
  expect(info.probes.map((probe: { name: string }) => probe.name)).toContain("trace_exec");
});
