// Failed system calls: the trace_syscall_errors probe's in-kernel counts (pid, comm, syscall number,
// errno → count), named (syscall tables, errno names) and ranked for the trace_syscall_errors tool.
import { z } from "zod";
import { errnoName } from "../util/errno.ts";
import { syscallName } from "../util/syscalls.ts";
import { type ProbeWindow, windowFields } from "./window.ts";

export const SYSCALL_ERRORS_PROBE = "trace_syscall_errors";
/** The kernel's comm: 16 bytes with the terminating NUL. */
export const COMM_MAX = 15;
/** by_syscall and by_errno: the top this many. */
const TOP = 20;

/** The return from a signal handler (rt_sigreturn) exits with syscall number -1 and the result it restores. */
const SIGNAL_RETURN = "(signal return)";

export function callName(nr: number, arch: string): string {
  return nr < 0 ? SIGNAL_RETURN : syscallName(nr, arch);
}

export interface ErrorKey {
  pid: number;
  command: string;
  nr: number;
  errno: number;
}

/**
 * One key of @errors as `bpftrace -f json` prints it: "pid,comm,nr,errno". A comm may hold commas
 * itself, so pid is read from the front and the two numbers from the back. null for anything else.
 */
export function parseErrorKey(key: string): ErrorKey | null {
  const first = key.indexOf(",");
  const last = key.lastIndexOf(",");
  const second = key.lastIndexOf(",", last - 1);
  if (first < 0 || second <= first) return null;
  const numbers = [key.slice(0, first), key.slice(second + 1, last), key.slice(last + 1)];
  if (!numbers.every((text) => /^-?\d+$/.test(text))) return null;
  const [pid, nr, errno] = numbers.map(Number) as [number, number, number];
  return { pid, command: key.slice(first + 1, second), nr, errno };
}

const count = z.number().int().nonnegative();
const row = z.object({
  pid: z.number(),
  command: z.string().describe("The kernel's comm: the program name, cut to 15 characters"),
  syscall: z.string().describe('Syscall name ("syscall_N" when this build does not know N; "(signal return)" for -1)'),
  syscall_nr: z.number(),
  errno: z.number(),
  errno_name: z.string(),
  count,
  per_second: z.number(),
});
export type SyscallErrorRow = z.infer<typeof row>;

export const syscallErrorsSchema = z.object({
  ...windowFields,
  pid_filter: z.number().nullable(),
  command_filter: z.string().nullable(),
  total_errors: count.describe("Every failed call that matched the filters, counted in the kernel"),
  unattributed: count.describe("Failed calls the probe's per-key map (4096 keys) had no room for: in total_errors only"),
  rows: z.array(row).describe("Each (pid, command, syscall, errno), most failures first"),
  truncated: z.boolean().describe("More rows than `limit`: the totals below still cover all of them"),
  by_syscall: z.array(z.object({ syscall: z.string(), syscall_nr: z.number(), count })).describe(`Failures per syscall, the top ${TOP}`),
  by_errno: z.array(z.object({ errno: z.number(), errno_name: z.string(), count })).describe(`Failures per errno, the top ${TOP}`),
  note: z.string(),
});
export type SyscallErrors = z.infer<typeof syscallErrorsSchema>;

function add<K>(map: Map<K, number>, key: K, n: number): void {
  map.set(key, (map.get(key) ?? 0) + n);
}

function top<K>(map: Map<K, number>, limit: number): [K, number][] {
  return [...map].sort((a, b) => b[1] - a[1]).slice(0, limit);
}

const perSecond = (n: number, durationS: number) => (durationS > 0 ? Math.round((n / durationS) * 10) / 10 : 0);

/**
 * The tool's figures from the probe's maps: `counts` is @errors (key → count), `total` is @all
 * (every matching failure, also those the map had no room for). Pure: `arch` names the syscalls.
 */
export function summarizeSyscallErrors(counts: Map<string, number>, total: number, options: { durationS: number; limit: number; arch?: string }) {
  const arch = options.arch ?? process.arch;
  const rows: SyscallErrorRow[] = [];
  const bySyscall = new Map<number, number>();
  const byErrno = new Map<number, number>();
  let keyed = 0;
  for (const [text, n] of counts) {
    const key = parseErrorKey(text);
    if (!key || n <= 0) continue;
    keyed += n;
    add(bySyscall, key.nr, n);
    add(byErrno, key.errno, n);
    rows.push({
      pid: key.pid,
      command: key.command,
      syscall: callName(key.nr, arch),
      syscall_nr: key.nr,
      errno: key.errno,
      errno_name: errnoName(key.errno),
      count: n,
      per_second: perSecond(n, options.durationS),
    });
  }
  // Most failures first; ties in a stable order (pid, syscall, errno) so that answers compare.
  rows.sort((a, b) => b.count - a.count || a.pid - b.pid || a.syscall_nr - b.syscall_nr || a.errno - b.errno);
  const totalErrors = Math.max(total, keyed);
  return {
    total_errors: totalErrors,
    unattributed: totalErrors - keyed,
    rows: rows.slice(0, options.limit),
    truncated: rows.length > options.limit,
    by_syscall: top(bySyscall, TOP).map(([nr, n]) => ({ syscall: callName(nr, arch), syscall_nr: nr, count: n })),
    by_errno: top(byErrno, TOP).map(([errno, n]) => ({ errno, errno_name: errnoName(errno), count: n })),
  };
}

/** The answer of trace_syscall_errors at any moment of the window. */
export function syscallErrorsAnswer(window: ProbeWindow, filter: { pid: number | null; command: string | null }, limit: number): SyscallErrors {
  const fields = window.fields();
  const summary = summarizeSyscallErrors(window.counts("@errors"), window.counts("@all").get("0") ?? 0, { durationS: fields.duration_s, limit });
  const notes = [
    "Counts are per (pid, comm, syscall, errno) over the window; many failures are normal (ENOENT from path lookups, EAGAIN from non-blocking I/O).",
  ];
  if (summary.unattributed > 0) notes.push(`${summary.unattributed} failure(s) did not fit the probe's map (4096 keys) and are only in total_errors: filter by pid or command.`);
  if (summary.by_errno.some((e) => e.errno >= 512 && e.errno <= 516)) {
    notes.push("ERESTART* codes are calls interrupted by a signal (userspace sees EINTR or a restart); one may come with a '(signal return)' row that repeats its EINTR.");
  }
  return { ...fields, pid_filter: filter.pid, command_filter: filter.command, ...summary, note: notes.join(" ") };
}
