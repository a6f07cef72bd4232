import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { exec } from "../../../src/util/exec.ts";

const spoolDirs = () => readdirSync(tmpdir()).filter((name) => name.startsWith("ipcscope-"));

describe("exec", () => {
  test("spool: a big stdout arrives whole, the same as through a pipe, and leaves nothing in the temp dir", async () => {
    const before = spoolDirs();
    // 3 MB: far more than a pipe holds, written while this thread is busy elsewhere.
    const argv = ["/usr/bin/python3", "-c", "import sys\nfor i in range(100000): sys.stdout.write('line %06d of the spooled output\\n' % i)"];
    const spooled = exec(argv, { spool: true });
    const until = Date.now() + 100;
    while (Date.now() < until); // the caller's synchronous work (the /proc scan)
    const [viaSpool, viaPipe] = [await spooled, await exec(argv)];
    expect(viaSpool.code).toBe(0);
    expect(viaSpool.stdout.length).toBe(100_000 * 34);
    expect(viaSpool.stdout).toBe(viaPipe.stdout);
    expect(viaSpool.stdout.endsWith("line 099999 of the spooled output\n")).toBe(true);
    expect(spoolDirs()).toEqual(before);
  });

  test("spool: stderr and the exit code still come back", async () => {
    const result = await exec(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], { spool: true });
    expect(result).toEqual({ code: 3, stdout: "out\n", stderr: "err\n", timedOut: false });
  });

  test("a program that does not exist is a result, not a throw", async () => {
    const before = spoolDirs();
    const result = await exec(["/nonexistent/ipcscope-no-such-program"], { spool: true });
    expect(result.code).toBeNull();
    expect(result.stderr).not.toBe("");
    expect(spoolDirs()).toEqual(before);
  });

  test("a timeout kills the child and says so", async () => {
    const result = await exec(["/bin/sleep", "5"], { spool: true, timeoutMs: 100 });
    expect(result.timedOut).toBe(true);
  });
});
