// The /proc side of send_signal_to_pid: the facts the protection rules need (state, flags, thread
// group, real and effective uid), ipcscope's own ancestry, a process's children, and watching what
// a signalled process does next. Gone processes are answers (null), as in snapshot/proc.ts.
import { listPids, parseStat, readProcess, readText, userName, type ProcessInfo, type StatFields } from "../snapshot/proc.ts";
import { statusField } from "../system/parse.ts";
import type { TargetFacts } from "./policy.ts";

export function readStat(pid: number): StatFields | null {
  const text = readText(`/proc/${pid}/stat`);
  return text === null ? null : parseStat(text);
}

/** ps's names of the state letters (proc(5)). */
export const STATE_NAMES: Record<string, string> = {
  R: "running",
  S: "sleeping",
  D: "uninterruptible sleep (disk)",
  Z: "zombie",
  T: "stopped",
  t: "stopped by a debugger",
  X: "dead",
  I: "idle kernel thread",
  P: "parked",
  W: "paging",
  K: "wakekill",
};

export interface Target {
  facts: TargetFacts;
  info: ProcessInfo;
  stat: StatFields;
}

/** Everything about one pid the tool shows and the rules check; null when no such process runs. */
export function readTarget(pid: number): Target | null {
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  const stat = readStat(pid);
  const status = readText(`/proc/${pid}/status`);
  const info = readProcess(pid);
  if (!stat || status === null || !info) return null;
  // Uid: real, effective, saved, filesystem.
  const [real, effective] = (statusField(status, "Uid") ?? "").split(/\s+/).map(Number);
  const tgid = Number(statusField(status, "Tgid"));
  return {
    stat,
    info,
    facts: {
      pid,
      tgid: Number.isSafeInteger(tgid) ? tgid : pid,
      ppid: stat.ppid,
      name: info.name,
      cmdline: info.cmdline,
      state: stat.state,
      flags: stat.flags,
      real_uid: Number.isSafeInteger(real) ? real! : info.uid,
      effective_uid: Number.isSafeInteger(effective) ? effective! : info.uid,
      userOf: userName,
    },
  };
}

/** The parents of `pid` up to pid 1 (not `pid` itself), read now. */
export function ancestorsOf(pid: number): Set<number> {
  const ancestors = new Set<number>();
  let current = pid;
  // 4096 steps bound a loop on a /proc that lies; real chains are a dozen deep.
  for (let step = 0; step < 4096; step++) {
    const ppid = readStat(current)?.ppid;
    if (ppid === undefined || ppid <= 0 || ancestors.has(ppid)) break;
    ancestors.add(ppid);
    if (ppid === 1) break;
    current = ppid;
  }
  return ancestors;
}

export interface Child {
  pid: number;
  name: string;
  command_line: string;
}

/** Processes whose parent is `pid` (one pass over /proc/*\/stat), at most `limit`. */
export function childrenOf(pid: number, limit = 50): { children: Child[]; total: number } {
  const children: Child[] = [];
  let total = 0;
  for (const candidate of listPids()) {
    if (readStat(candidate)?.ppid !== pid) continue;
    total++;
    if (children.length >= limit) continue;
    const info = readProcess(candidate);
    if (info) children.push({ pid: candidate, name: info.name, command_line: info.command_line.slice(0, 300) });
  }
  return { children, total };
}

/** Seconds since the epoch when the system booted (/proc/stat btime). */
function bootTime(): number | null {
  const text = readText("/proc/stat");
  const match = text === null ? null : /^btime (\d+)$/m.exec(text);
  return match ? Number(match[1]) : null;
}

/**
 * USER_HZ: the unit of start_time_ticks. The kernel fixes it at 100 for user space on x86_64 and
 * arm64 whatever CONFIG_HZ is (sysconf(_SC_CLK_TCK), which Bun does not expose).
 */
const USER_HZ = 100;

/** A process's start time as an ISO date; null when the boot time cannot be read. */
export function startTimeIso(ticks: number): string | null {
  const boot = bootTime();
  return boot === null ? null : new Date((boot + ticks / USER_HZ) * 1000).toISOString();
}

export type Outcome = "exited" | "zombie" | "running";

export interface Watched {
  outcome: Outcome;
  /** State letter at the end of the watch; null when gone. */
  state: string | null;
  /** From the signal to the exit (or zombie) being seen; null when still running. */
  exited_after_ms: number | null;
  waited_ms: number;
}

/** How often the watch looks: short enough to time an exit to a few tens of ms, cheap (one stat read). */
const WATCH_INTERVAL_MS = 20;

/**
 * Watches pid after a signal for up to waitMs: exited (gone, or its pid now names a process that
 * started later), zombie (it exited but its parent has not reaped it by the end of the wait), or
 * still running (with its state, e.g. T after SIGSTOP). A zombie is watched on, since most parents
 * reap within milliseconds. Stops early when `signal` aborts.
 */
export async function watchAfterSignal(pid: number, startTicks: number, waitMs: number, sentAt: number, signal: AbortSignal): Promise<Watched> {
  let zombieAfter: number | null = null;
  for (;;) {
    const stat = readStat(pid);
    const elapsed = Math.round(performance.now() - sentAt);
    if (!stat || stat.start_time_ticks !== startTicks) return { outcome: "exited", state: null, exited_after_ms: zombieAfter ?? elapsed, waited_ms: elapsed };
    if ((stat.state === "Z" || stat.state === "X") && zombieAfter === null) zombieAfter = elapsed;
    if (elapsed >= waitMs || signal.aborted) {
      return { outcome: zombieAfter === null ? "running" : "zombie", state: stat.state, exited_after_ms: zombieAfter, waited_ms: elapsed };
    }
    await Bun.sleep(Math.max(1, Math.min(WATCH_INTERVAL_MS, waitMs - elapsed)));
  }
}
