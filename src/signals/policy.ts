// What send_signal_to_pid may do, decided without I/O: signal names, the protection rules, and the
// single-use confirmation tokens. The tool reads /proc (target.ts), asks this module, and writes
// the audit (audit.ts). Everything here takes its facts and its clock as arguments, so the rules
// are tested exactly.
import { ToolError, UsageError } from "../errors.ts";

// ---------------------------------------------------------------------------------------------
// Signals

export interface Signal {
  /** "SIGTERM" */
  name: string;
  number: number;
  /** What it usually does, for the preview. */
  effect: string;
}

/**
 * The standard signals of Linux on x86_64 and arm64 (both use these numbers; mips, alpha and sparc
 * do not, and ipcscope does not build for them). Real-time signals are left out on purpose: their
 * meaning is private to each program.
 */
export const SIGNALS: readonly Signal[] = [
  { name: "SIGHUP", number: 1, effect: "hang-up; many daemons reload their configuration" },
  { name: "SIGINT", number: 2, effect: "interrupt (Ctrl-C); can be caught" },
  { name: "SIGQUIT", number: 3, effect: "quit with a core dump; can be caught (the JVM prints thread dumps)" },
  { name: "SIGILL", number: 4, effect: "illegal instruction: terminates with a core dump" },
  { name: "SIGTRAP", number: 5, effect: "trace trap: terminates with a core dump" },
  { name: "SIGABRT", number: 6, effect: "abort: terminates with a core dump" },
  { name: "SIGBUS", number: 7, effect: "bus error: terminates with a core dump" },
  { name: "SIGFPE", number: 8, effect: "arithmetic error: terminates with a core dump" },
  { name: "SIGKILL", number: 9, effect: "kills at once; cannot be caught, nothing is cleaned up" },
  { name: "SIGUSR1", number: 10, effect: "user-defined; terminates a program that does not handle it" },
  { name: "SIGSEGV", number: 11, effect: "segmentation fault: terminates with a core dump" },
  { name: "SIGUSR2", number: 12, effect: "user-defined; terminates a program that does not handle it" },
  { name: "SIGPIPE", number: 13, effect: "broken pipe: terminates unless ignored" },
  { name: "SIGALRM", number: 14, effect: "timer: terminates unless handled" },
  { name: "SIGTERM", number: 15, effect: "asks to terminate; can be caught, lets the program clean up" },
  { name: "SIGSTKFLT", number: 16, effect: "unused on Linux: terminates" },
  { name: "SIGCHLD", number: 17, effect: "child status changed; ignored by default" },
  { name: "SIGCONT", number: 18, effect: "continues a stopped process" },
  { name: "SIGSTOP", number: 19, effect: "stops (pauses) the process; cannot be caught; SIGCONT resumes it" },
  { name: "SIGTSTP", number: 20, effect: "terminal stop (Ctrl-Z): stops unless handled" },
  { name: "SIGTTIN", number: 21, effect: "background read from the terminal: stops" },
  { name: "SIGTTOU", number: 22, effect: "background write to the terminal: stops" },
  { name: "SIGURG", number: 23, effect: "urgent socket data; ignored by default" },
  { name: "SIGXCPU", number: 24, effect: "CPU time limit exceeded: terminates with a core dump" },
  { name: "SIGXFSZ", number: 25, effect: "file size limit exceeded: terminates with a core dump" },
  { name: "SIGVTALRM", number: 26, effect: "virtual timer: terminates unless handled" },
  { name: "SIGPROF", number: 27, effect: "profiling timer: terminates unless handled" },
  { name: "SIGWINCH", number: 28, effect: "terminal resized; ignored by default" },
  { name: "SIGIO", number: 29, effect: "I/O possible: terminates unless handled" },
  { name: "SIGPWR", number: 30, effect: "power failure: terminates unless handled" },
  { name: "SIGSYS", number: 31, effect: "bad system call: terminates with a core dump" },
];

/** Other names of the same signals (signal(7)). */
const ALIASES: Record<string, string> = { SIGIOT: "SIGABRT", SIGPOLL: "SIGIO", SIGCLD: "SIGCHLD" };

/**
 * "SIGTERM", "TERM", "sigterm", "15" or 15 → SIGTERM. Anything else is refused with the list of
 * known signals; 0 (which sends nothing) and real-time signals are not known.
 */
export function parseSignal(value: string | number, param = "sig_str"): Signal {
  const text = String(value).trim().toUpperCase();
  let found: Signal | undefined;
  if (/^\d+$/.test(text)) found = SIGNALS.find((signal) => signal.number === Number(text));
  else {
    const name = text.startsWith("SIG") ? text : `SIG${text}`;
    found = SIGNALS.find((signal) => signal.name === (ALIASES[name] ?? name));
  }
  if (!found) {
    throw new ToolError(
      `${param}: unknown signal ${JSON.stringify(value)}; give a name or number of one of ` +
        `${SIGNALS.map((signal) => `${signal.name} (${signal.number})`).join(", ")}`,
    );
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Protection rules

export interface SignalPolicy {
  /** --allow-signals */
  enabled: boolean;
  /** --signal-deny-commands: process names (comm) or program basenames that are never signalled. */
  denyCommands: readonly string[];
  /** --signal-allow-users: when not empty, only processes of these users (names or uids). */
  allowUsers: readonly string[];
  /** --signal-deny-users: never processes of these users (names or uids); wins over the allow list. */
  denyUsers: readonly string[];
}

export const DEFAULT_DENY_COMMANDS = "systemd,init,sshd,dbus-daemon,dbus-broker,journald,systemd-journald,systemd-logind,auditd";

export const DEFAULT_POLICY: SignalPolicy = {
  enabled: false,
  denyCommands: parseNameList(DEFAULT_DENY_COMMANDS, "--signal-deny-commands"),
  allowUsers: [],
  denyUsers: [],
};

/** "a, b,,c" → ["a", "b", "c"]; an entry with spaces or odd characters is a UsageError naming the flag. */
export function parseNameList(value: string | undefined, flag: string): string[] {
  if (value === undefined) return [];
  const names = value.split(",").map((name) => name.trim()).filter(Boolean);
  for (const name of names) {
    // comm names may hold almost anything, but a deny list entry with a space is a typo far more often.
    if (!/^[\w.@:+-]+\$?$/.test(name)) throw new UsageError(`${flag}: "${name}" is not a process or user name (comma-separated list expected)`);
  }
  return names;
}

/** PF_KTHREAD in the flags of /proc/PID/stat (include/linux/sched.h): the task is a kernel thread. */
export const PF_KTHREAD = 0x00200000;
/** The kernel's kthreadd: parent of every kernel thread. */
const KTHREADD_PID = 2;
/** /proc/PID/comm holds at most 15 characters (TASK_COMM_LEN 16 with the NUL). */
const COMM_LEN = 15;

/** What the rules look at, read from /proc by target.ts. */
export interface TargetFacts {
  pid: number;
  /** Thread group id: differs from pid when pid names a thread, not a process. */
  tgid: number;
  ppid: number;
  /** /proc/PID/comm */
  name: string;
  cmdline: readonly string[];
  /** Field 3 of /proc/PID/stat: R, S, D, Z, T, t, X, I... */
  state: string;
  /** Field 9 of /proc/PID/stat. */
  flags: number;
  real_uid: number;
  effective_uid: number;
  /** uid → user name (from /etc/passwd, else the uid as text). */
  userOf: (uid: number) => string;
}

export type RuleName =
  | "pid-range"
  | "init"
  | "not-running"
  | "thread"
  | "kernel-thread"
  | "zombie"
  | "self"
  | "ancestor"
  | "deny-command"
  | "deny-user"
  | "allow-user"
  | "start-time";

export type Verdict = { ok: true } | { ok: false; rule: RuleName; reason: string };

function refuse(rule: RuleName, reason: string): Verdict {
  return { ok: false, rule, reason };
}

function userMatches(entry: string, uid: number, name: string): boolean {
  return entry === String(uid) || entry === name;
}

/**
 * The rules, in the order they are checked; the first that refuses decides. `self` is ipcscope's
 * pid and `ancestors` its parent chain up to pid 1 (walked at the time of the call: a parent that
 * exits re-parents us).
 *
 * Users: a process is matched by both its real and its effective uid, so `sudo` (real alice,
 * effective root) is caught by a deny of root and by a deny of alice, and passes an allow list
 * only when both uids are on it.
 */
export function checkTarget(
  pid: number,
  facts: TargetFacts | null,
  policy: SignalPolicy,
  self: { pid: number; ancestors: ReadonlySet<number> },
): Verdict {
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    return refuse("pid-range", `pid ${pid} is not one process (kill(2) sends 0 to the caller's process group, -1 to every process, -N to group N)`);
  }
  if (pid === 1) return refuse("init", "pid 1 is the init process (systemd); signalling it can take the whole host down");
  if (!facts) return refuse("not-running", `no process ${pid} is running (it exited, or never existed): list processes with get_process_connection_snapshot`);
  if (facts.tgid !== pid) return refuse("thread", `pid ${pid} is a thread of process ${facts.tgid}, and a signal would reach the whole process; give the process's pid`);
  if (pid === KTHREADD_PID || facts.ppid === KTHREADD_PID || (facts.flags & PF_KTHREAD) !== 0) {
    return refuse("kernel-thread", `pid ${pid} (${facts.name}) is a kernel thread`);
  }
  if (facts.state === "Z" || facts.state === "X") {
    return refuse("zombie", `pid ${pid} (${facts.name}) has already exited (zombie); only its parent, pid ${facts.ppid}, can reap it`);
  }
  // A user process always has an argv; an empty one is a kernel thread that our flag test missed.
  if (facts.cmdline.length === 0) return refuse("kernel-thread", `pid ${pid} (${facts.name}) has no command line, like a kernel thread`);
  if (pid === self.pid) return refuse("self", `pid ${pid} is this ipcscope server`);
  if (self.ancestors.has(pid)) return refuse("ancestor", `pid ${pid} (${facts.name}) is a parent of this ipcscope server (killing it could stop the server or the session that runs it)`);

  const program = facts.cmdline[0]?.split("/").pop() ?? "";
  const denied = policy.denyCommands.find((entry) => entry.slice(0, COMM_LEN) === facts.name || entry === program);
  if (denied !== undefined) {
    return refuse("deny-command", `pid ${pid} (${facts.name}) matches "${denied}" in --signal-deny-commands (${policy.denyCommands.join(",")})`);
  }

  const uids = [...new Set([facts.real_uid, facts.effective_uid])];
  for (const uid of uids) {
    const name = facts.userOf(uid);
    const entry = policy.denyUsers.find((candidate) => userMatches(candidate, uid, name));
    if (entry !== undefined) return refuse("deny-user", `pid ${pid} (${facts.name}) runs as ${name} (uid ${uid}), which --signal-deny-users lists ("${entry}")`);
  }
  if (policy.allowUsers.length > 0) {
    for (const uid of uids) {
      const name = facts.userOf(uid);
      if (!policy.allowUsers.some((candidate) => userMatches(candidate, uid, name))) {
        return refuse("allow-user", `pid ${pid} (${facts.name}) runs as ${name} (uid ${uid}), which is not in --signal-allow-users (${policy.allowUsers.join(",")})`);
      }
    }
  }
  return { ok: true };
}

/**
 * The confirmed call's last check: the pid still names the process that was previewed. A pid is
 * reused after its process exits; the start time (ticks after boot) tells the two apart.
 */
export function checkSameProcess(binding: TokenBinding, startTimeTicks: number): Verdict {
  if (binding.start_time_ticks === startTimeTicks) return { ok: true };
  return refuse(
    "start-time",
    `pid ${binding.pid} is now a different process (started at tick ${startTimeTicks}, the previewed one at tick ` +
      `${binding.start_time_ticks}): the previewed process exited and its pid was reused; preview again`,
  );
}

// ---------------------------------------------------------------------------------------------
// Confirmation tokens

/** How long a preview's token can be used: long enough to read the preview and ask a person. */
export const DEFAULT_TOKEN_TTL_MS = 60_000;
/** Outstanding tokens kept at most; the oldest is dropped beyond (a runaway agent cannot grow memory). */
const MAX_TOKENS = 256;

export interface TokenBinding {
  pid: number;
  start_time_ticks: number;
  signal: string;
}

interface TokenEntry extends TokenBinding {
  token: string;
  issuedAt: number;
  expiresAt: number;
  usedAt: number | null;
}

export type Redeemed = { ok: true; binding: TokenBinding } | { ok: false; reason: string };

/** 128 random bits as hex, from the Web Crypto global (node:crypto costs start-up time). */
export function randomToken(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Compares without stopping at the first difference, so timing does not reveal a prefix. */
export function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Single-use tokens bound to (pid, process start time, signal). A token is spent by the first call
 * that presents it, whatever that call's outcome: a mismatch means the agent is confused, and a
 * fresh preview is the cure. Spent and expired tokens are remembered for one more lifetime, so the
 * refusal can say "already used" or "expired" rather than "unknown".
 */
export class TokenStore {
  private entries: TokenEntry[] = [];

  constructor(
    readonly ttlMs: number = DEFAULT_TOKEN_TTL_MS,
    private readonly now: () => number = Date.now,
    private readonly random: () => string = randomToken,
  ) {}

  issue(binding: TokenBinding): { token: string; expiresAt: number } {
    this.prune();
    const issuedAt = this.now();
    const entry: TokenEntry = { ...binding, token: this.random(), issuedAt, expiresAt: issuedAt + this.ttlMs, usedAt: null };
    this.entries.push(entry);
    if (this.entries.length > MAX_TOKENS) this.entries.shift();
    return { token: entry.token, expiresAt: entry.expiresAt };
  }

  redeem(token: string, request: { pid: number; signal: string }): Redeemed {
    this.prune();
    const now = this.now();
    let entry: TokenEntry | undefined;
    // Every entry is compared, each in constant time.
    for (const candidate of this.entries) if (constantTimeEqual(candidate.token, token)) entry = candidate;
    if (!entry) return { ok: false, reason: "confirm_token is not one this server issued (mistyped, or from before a restart); call again without confirm_token for a new preview" };
    if (entry.usedAt !== null) return { ok: false, reason: `confirm_token was already used ${Math.round((now - entry.usedAt) / 1000)} s ago; tokens are single-use: call again without confirm_token for a new preview` };
    entry.usedAt = now;
    if (now >= entry.expiresAt) {
      return { ok: false, reason: `confirm_token expired ${((now - entry.expiresAt) / 1000).toFixed(1)} s ago (tokens last ${this.ttlMs / 1000} s); call again without confirm_token for a new preview` };
    }
    if (entry.pid !== request.pid) return { ok: false, reason: `confirm_token was issued for pid ${entry.pid}, not pid ${request.pid}; it is now spent: preview pid ${request.pid} first` };
    if (entry.signal !== request.signal) return { ok: false, reason: `confirm_token was issued for ${entry.signal}, not ${request.signal}; it is now spent: preview again with the signal you mean` };
    return { ok: true, binding: { pid: entry.pid, start_time_ticks: entry.start_time_ticks, signal: entry.signal } };
  }

  /** Forgets tokens one lifetime after they expired. */
  private prune(): void {
    const now = this.now();
    this.entries = this.entries.filter((entry) => now < entry.expiresAt + this.ttlMs);
  }
}

/**
 * The token lifetime: IPCSCOPE_SIGNAL_TOKEN_TTL_MS (for tests, to see a token expire) may only
 * shorten the default, never lengthen it.
 */
export function tokenTtlFromEnv(value: string | undefined): number {
  if (value === undefined || value === "") return DEFAULT_TOKEN_TTL_MS;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 1 || ms > DEFAULT_TOKEN_TTL_MS) {
    throw new UsageError(`IPCSCOPE_SIGNAL_TOKEN_TTL_MS: "${value}" is not a number of milliseconds from 1 to ${DEFAULT_TOKEN_TTL_MS}`);
  }
  return ms;
}
