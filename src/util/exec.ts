// Running short-lived helper commands (ss -V, bpftrace --version, python3 -c ...).
// Long-running children (probes) are the supervisor's business, not this file's.

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

export async function exec(
  argv: readonly string[],
  options: { timeoutMs?: number; env?: Record<string, string | undefined> } = {},
): Promise<ExecResult> {
  const [program, ...args] = argv;
  if (!program) throw new Error("exec: empty argv");
  const path = program.includes("/") ? program : which(program);
  if (!path) return { code: null, stdout: "", stderr: `${program}: not found`, timedOut: false };
  let child: ReturnType<typeof Bun.spawn>;
  try {
    child = Bun.spawn([path, ...args], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: options.env ? { ...process.env, ...options.env } : process.env,
      timeout: options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS,
      killSignal: "SIGKILL",
    });
  } catch (error) {
    return { code: null, stdout: "", stderr: String(error), timedOut: false };
  }
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout as ReadableStream).text(),
    new Response(child.stderr as ReadableStream).text(),
    child.exited,
  ]);
  return { code, stdout, stderr, timedOut: child.signalCode === "SIGKILL" };
}
