// trace_syscall_errors end to end: the compiled binary over HTTP runs the real probe, and a child
// made here fails a known number of openat() calls (a missing file) once the probe is attached;
// the tool must count exactly those for the child's pid, also by command name and as a background
// job. Then bad input, which must fail with a message that names the parameter.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { SyscallErrors } from "../../src/health/syscalls.ts";
import { firstLine, resultText, startHttpServer, testWithBpf, type HttpServer } from "../helpers.ts";

const PYTHON = "/usr/bin/python3";
/** Failed opens the child makes once told to go. */
const FAILS = 2000;
/** openat on x86_64 and aarch64: the only two architectures ipcscope ships for. */
const OPENAT = process.arch === "arm64" ? 56 : 257;
/**
 * Prints "ready", waits for a line on stdin, fails FAILS opens of a missing file, prints how many
 * failed, and exits. Bounded: stdin closing ends the wait, and SIGALRM ends it after 60 s anyway.
 */
const CHILD = `
import os, signal, sys
signal.alarm(60)
print("ready", flush=True)
if sys.stdin.readline().strip() != "go":
    sys.exit(1)
failed = 0
for _ in range(${FAILS}):
    try:
        os.close(os.open("/nonexistent/ipcscope-e2e-syscall-errors", os.O_RDONLY))
    except FileNotFoundError:
        failed += 1
print(failed, flush=True)
`;

interface Child {
  proc: Bun.Subprocess<"pipe", "pipe", "pipe">;
  go: () => void;
  /** What the child says it failed, once it has exited. */
  failed: () => Promise<number>;
}

/** The rest of a stream that firstLine() has read from (a Response cannot take a stream once read). */
async function rest(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text + decoder.decode();
    text += decoder.decode(value, { stream: true });
  }
}

async function startChild(program = PYTHON): Promise<Child> {
  const proc = Bun.spawn([program, "-c", CHILD], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  expect(await firstLine(proc.stdout)).toBe("ready");
  let went = false;
  return {
    proc,
    go: () => {
      if (went) return;
      went = true;
      proc.stdin.write("go\n");
      void proc.stdin.flush();
    },
    failed: async () => {
      const [out, err, code] = await Promise.all([rest(proc.stdout), new Response(proc.stderr).text(), proc.exited]);
      if (code !== 0) throw new Error(`child failed (${code}): ${err}`);
      return Number(out.trim());
    },
  };
}

describe("trace_syscall_errors", () => {
  let server: HttpServer;
  const mcp = new Client({ name: "e2e-syscall-errors", version: "0" });
  const dir = mkdtempSync(join(tmpdir(), "ipcscope-syscalls-"));
  const children: Child[] = [];

  beforeAll(async () => {
    server = await startHttpServer(["--no-monitor"]);
    await mcp.connect(new StreamableHTTPClientTransport(server.url));
  });

  afterAll(async () => {
    for (const child of children) child.proc.kill("SIGKILL");
    await mcp.close().catch(() => {});
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function call(name: string, args: Record<string, unknown>, onprogress?: () => void) {
    const result = await mcp.callTool({ name, arguments: args }, undefined, { onprogress, timeout: 90_000 });
    expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    return result.structuredContent as Record<string, unknown>;
  }

  /** The answer's openat/ENOENT row of a pid. */
  const openatRow = (answer: SyscallErrors, pid: number) => answer.rows.find((row) => row.pid === pid && row.syscall_nr === OPENAT && row.errno === 2);

  testWithBpf("with a pid filter, it counts the child's failed openat calls, and nothing of any other process", async () => {
    const child = await startChild();
    children.push(child);
    // Progress is reported once a second from when the probe is attached: the first one starts the child.
    const answer = (await call("trace_syscall_errors", { duration: 4, pid: child.proc.pid }, () => child.go())) as unknown as SyscallErrors;
    const failed = await child.failed();
    expect(failed).toBe(FAILS);
    expect(answer).toMatchObject({ done: true, pid_filter: child.proc.pid, command_filter: null, probe_restarts: 0, gaps: [] });
    expect(answer.source).toContain("raw_syscalls:sys_exit");
    expect(answer.duration_s).toBeGreaterThanOrEqual(3.5);
    const row = openatRow(answer, child.proc.pid);
    expect(row, JSON.stringify(answer.rows)).toMatchObject({ syscall: "openat", errno_name: "ENOENT", command: "python3" });
    // Exactly the child's own failures; a little slack for an interpreter that tries a path on its way out.
    expect(row!.count).toBeGreaterThanOrEqual(failed);
    expect(row!.count).toBeLessThanOrEqual(failed + 5);
    expect(answer.rows.every((r) => r.pid === child.proc.pid)).toBe(true);
    expect(answer.total_errors).toBeGreaterThanOrEqual(row!.count);
    expect(answer.unattributed).toBe(0);
    expect(answer.by_syscall[0]).toMatchObject({ syscall: "openat", syscall_nr: OPENAT });
    expect(answer.by_errno[0]).toMatchObject({ errno: 2, errno_name: "ENOENT" });
  }, 60_000);

  testWithBpf("with a command filter, it counts by the kernel's name of the program", async () => {
    // A copy of python under a name of our own (14 characters: the comm holds it whole).
    const program = join(dir, "ipcscope-sysce");
    copyFileSync(PYTHON, program);
    Bun.spawnSync(["chmod", "755", program]);
    const child = await startChild(program);
    children.push(child);
    const answer = (await call("trace_syscall_errors", { duration: 4, command: "ipcscope-sysce" }, () => child.go())) as unknown as SyscallErrors;
    const failed = await child.failed();
    expect(answer.command_filter).toBe("ipcscope-sysce");
    expect(answer.rows.length).toBeGreaterThan(0);
    expect(answer.rows.every((row) => row.command === "ipcscope-sysce")).toBe(true);
    const row = openatRow(answer, child.proc.pid);
    expect(row!.count).toBeGreaterThanOrEqual(failed);
    expect(row!.count).toBeLessThanOrEqual(failed + 5);
  }, 60_000);

  testWithBpf("as a background job: results while it runs, then stop_capture returns the rows", async () => {
    const child = await startChild();
    children.push(child);
    const started = await call("trace_syscall_errors", { duration: 120, pid: child.proc.pid, background: true });
    const jobId = started.job_id as string;
    expect(jobId).toBeString();
    expect(started.done).toBe(false);
    // The job's probe is attached once its results carry started_at.
    const deadline = Date.now() + 30_000;
    let partial: Record<string, unknown> = {};
    while (Date.now() < deadline) {
      partial = await call("get_capture_results", { job_id: jobId });
      if ((partial.result as SyscallErrors | undefined)?.started_at) break;
      await Bun.sleep(200);
    }
    expect(partial).toMatchObject({ job_id: jobId, kind: "trace_syscall_errors", done: false });
    expect((partial.result as SyscallErrors).started_at).toBeString();
    child.go();
    const failed = await child.failed();
    // The probe prints its map every second: wait for a print that holds the child's calls.
    let running: SyscallErrors | undefined;
    while (Date.now() < deadline + 10_000) {
      running = (await call("get_capture_results", { job_id: jobId })).result as SyscallErrors;
      if ((openatRow(running, child.proc.pid)?.count ?? 0) >= failed) break;
      await Bun.sleep(250);
    }
    expect(running!.done).toBe(false);
    expect(openatRow(running!, child.proc.pid)?.count).toBeGreaterThanOrEqual(failed);
    const stopped = await call("stop_capture", { job_id: jobId });
    expect(stopped).toMatchObject({ job_id: jobId, kind: "trace_syscall_errors", done: true });
    const result = stopped.result as SyscallErrors;
    expect(result.done).toBe(true);
    expect(result.duration_s).toBeLessThan(60);
    const row = openatRow(result, child.proc.pid);
    expect(row).toMatchObject({ syscall: "openat", errno_name: "ENOENT" });
    expect(row!.count).toBeGreaterThanOrEqual(failed);
    expect(row!.count).toBeLessThanOrEqual(failed + 5);
  }, 90_000);

  test("bad input fails with a message that names the parameter and says what to do", async () => {
    const refused = async (args: Record<string, unknown>) => {
      const result = await mcp.callTool({ name: "trace_syscall_errors", arguments: args });
      expect(result.isError).toBe(true);
      return resultText(result);
    };
    expect(await refused({ duration: 0 })).toContain("duration");
    const long = await refused({ command: "a-very-long-name-20c" });
    expect(long).toContain("command");
    expect(long).toContain("15");
    expect(await refused({ duration: 100 })).toContain("background: true");
    expect(await refused({ pid: 2 ** 22 + 1 })).toContain("no process");
  });
});
