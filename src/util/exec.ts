// Running short-lived helper commands (ss -V, bpftrace --version, python3 -c ...).
// Long-running children (probes) are the supervisor's business, not this file's.

import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmdirSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ExecResult {
  /** null when the command could not be started at all (not found, not executable). */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Helpers answer in milliseconds; a stuck one (a hung NFS mount, a wedged python) must not stall a tool call. */
export const DEFAULT_EXEC_TIMEOUT_MS = 5_000;

/** Directories root's PATH has on RHEL but a service unit's or a container's PATH may lack. */
const SBIN_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin"];

/** Full path of a program, looking in PATH and then in the sbin directories; null if absent. */
export function which(program: string): string | null {
  const path = [process.env.PATH ?? "", ...SBIN_DIRS].filter(Boolean).join(":");
  return Bun.which(program, { PATH: path });
}

/**
 * A private, already-unlinked temp file for a child's stdout: the child writes at full speed while
 * we are busy (a pipe holds 64 KiB, then the child waits for us), and nothing is left on disk
 * whatever happens to either process.
 */
function spoolFile(): number {
  const dir = mkdtempSync(join(tmpdir(), "ipcscope-"));
  try {
    const fd = openSync(join(dir, "stdout"), "w+", 0o600);
    unlinkSync(join(dir, "stdout"));
    return fd;
  } finally {
    rmdirSync(dir);
  }
}

function readSpool(fd: number): string {
  const buffer = Buffer.allocUnsafe(fstatSync(fd).size);
  let done = 0;
  while (done < buffer.length) {
    const n = readSync(fd, buffer, done, buffer.length - done, done);
    if (n === 0) break;
    done += n;
  }
  return buffer.toString("utf8", 0, done);
}

/**
 * Runs a helper to completion. `spool: true` sends its stdout to a temp file instead of a pipe,
 * for big outputs read after the caller has done other synchronous work meanwhile (the snapshot
 * scans /proc while ss runs).
 */
export async function exec(
  argv: readonly string[],
  options: { timeoutMs?: number; env?: Record<string, string | undefined>; spool?: boolean } = {},
): Promise<ExecResult> {
  const [program, ...args] = argv;
  if (!program) throw new Error("exec: empty argv");
  const path = program.includes("/") ? program : which(program);
  if (!path) return { code: null, stdout: "", stderr: `${program}: not found`, timedOut: false };
  let child: ReturnType<typeof Bun.spawn>;
  const spool = options.spool ? spoolFile() : null;
  try {
    child = Bun.spawn([path, ...args], {
      stdin: "ignore",
      stdout: spool ?? "pipe",
      stderr: "pipe",
      env: options.env ? { ...process.env, ...options.env } : process.env,
      timeout: options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS,
      killSignal: "SIGKILL",
    });
  } catch (error) {
    if (spool !== null) closeSync(spool);
    return { code: null, stdout: "", stderr: String(error), timedOut: false };
  }
  try {
    const [stdout, stderr, code] = await Promise.all([
      spool === null ? new Response(child.stdout as ReadableStream).text() : "",
      new Response(child.stderr as ReadableStream).text(),
      child.exited,
    ]);
    return { code, stdout: spool === null ? stdout : readSpool(spool), stderr, timedOut: child.signalCode === "SIGKILL" };
  } finally {
    if (spool !== null) closeSync(spool);
  }
}
