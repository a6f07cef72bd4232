// The /proc side of a snapshot: who a process is (ppid, user, cmdline, cgroup → unit/container,
// network namespace) and which processes hold which socket inodes.
//
// Everything here is synchronous on purpose: /proc reads never block on disk, and a snapshot
// reads thousands of tiny files, where the promise per read of the async API costs more than the read.
// Processes exit while we read them; every reader treats ENOENT/ESRCH (gone) and EACCES/EPERM
// (not ours to see, when not root) as an answer, not an error.
import { readFileSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { statusField } from "../system/parse.ts";

export type ContainerRuntime = "docker" | "podman" | "containerd" | "cri-o" | "kubepods" | "lxc" | "unknown";

export interface ContainerRef {
  runtime: ContainerRuntime;
  /** The runtime's id: a 64-hex container id, or the lxc / nspawn machine name. */
  id: string;
}

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** /proc/PID/comm, trimmed: at most 15 characters, may contain spaces and parentheses. */
  name: string;
  /** Effective uid (what ps shows as USER). */
  uid: number;
  /** Name from /etc/passwd; the uid as text when it has none there (LDAP/SSSD users, container uids). */
  user: string;
  /** /proc/PID/cmdline split on NUL; [] for kernel threads and zombies. */
  cmdline: string[];
  /** cmdline joined with spaces, or "[name]" when there is none (as ps shows kernel threads). */
  command_line: string;
  /** The cgroup path chosen by {@link parseCgroup}. */
  cgroup: string | null;
  /** The systemd unit (see {@link parseCgroup}); for a container, the host unit holding it, if any. */
  unit: string | null;
  container: ContainerRef | null;
  /** Inode of the network namespace (readlink /proc/PID/ns/net → "net:[4026531840]"). */
  netns: number | null;
  /** Field 22 of /proc/PID/stat, in clock ticks since boot: (pid, start time) names a process across pid reuse. */
  start_time_ticks: number | null;
}

/** Errors that mean "this process (or fd) is gone" or "not ours to read", never a bug. */
const EXPECTED_ERRNO = new Set(["ENOENT", "ESRCH", "EACCES", "EPERM"]);

function isExpected(error: unknown): boolean {
  return EXPECTED_ERRNO.has((error as NodeJS.ErrnoException)?.code ?? "");
}

/** A /proc file's text, or null when the process is gone or hidden (ENOENT, ESRCH, EACCES, EPERM). */
export function readText(path: string): string | null {
  try {
    return readFileSync(path, "latin1");
  } catch (error) {
    if (isExpected(error)) return null;
    throw error;
  }
}

function readLink(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch (error) {
    if (isExpected(error)) return null;
    throw error;
  }
}

/** The number inside a "type:[12345]" link text (socket:[…], net:[…]); null for anything else. */
export function bracketedInode(link: string, prefix: string): number | null {
  if (!link.startsWith(prefix) || link.charCodeAt(link.length - 1) !== 93 /* ] */) return null;
  const inode = Number(link.slice(prefix.length, -1));
  return Number.isSafeInteger(inode) ? inode : null;
}

// ---------------------------------------------------------------------------------------------
// /proc/PID/stat

export interface StatFields {
  state: string;
  ppid: number;
  /** Field 9: PF_* flags of the task (PF_KTHREAD among them). */
  flags: number;
  /** Field 22, clock ticks after boot. */
  start_time_ticks: number;
}

/**
 * Parses /proc/PID/stat. The comm field in parentheses may itself contain spaces and ')' (a process
 * may name itself "a) b (c"), so the fields are counted from the LAST ')'.
 */
export function parseStat(text: string): StatFields | null {
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  // After ") ": field 3 (state) is index 0, so field N is index N - 3.
  const fields = text.slice(close + 2).trim().split(" ");
  const state = fields[0];
  const ppid = Number(fields[1]);
  const flags = Number(fields[6]);
  const start = Number(fields[19]);
  if (!state || fields[19] === undefined || ![ppid, flags, start].every(Number.isSafeInteger)) return null;
  return { state, ppid, flags, start_time_ticks: start };
}

// ---------------------------------------------------------------------------------------------
// /proc/PID/cgroup

const HEX64 = "[0-9a-f]{64}";

/**
 * Container patterns, tried in order on each path; the first match wins. Specific runtimes come
 * before the generic kubepods one, so a pod's container is reported by its runtime.
 */
const CONTAINER_PATTERNS: { runtime: ContainerRuntime; re: RegExp }[] = [
  // systemd cgroup driver: system.slice/docker-<id>.scope (also under kubepods.slice with dockershim)
  { runtime: "docker", re: new RegExp(`(?:^|/)docker-(${HEX64})\\.scope(?:/|$)`) },
  // cgroupfs driver: /docker/<id>
  { runtime: "docker", re: new RegExp(`(?:^|/)docker/(${HEX64})(?:/|$)`) },
  // podman: machine.slice/libpod-<id>.scope[/container]; cgroupfs: /libpod_parent/libpod-<id>.
  // libpod-conmon-<id>.scope is the monitor on the host, not the container, and does not match.
  { runtime: "podman", re: new RegExp(`(?:^|/)libpod-(${HEX64})(?:\\.scope)?(?:/|$)`) },
  // containerd as Kubernetes CRI and nerdctl (".scope" with the systemd driver, bare with cgroupfs)
  { runtime: "containerd", re: new RegExp(`(?:^|/)(?:cri-containerd|nerdctl)-(${HEX64})(?:\\.scope)?(?:/|$)`) },
  // cri-o; crio-conmon-<id>.scope is the monitor and does not match
  { runtime: "cri-o", re: new RegExp(`(?:^|/)crio-(${HEX64})(?:\\.scope)?(?:/|$)`) },
  // kubepods with the cgroupfs driver: /kubepods/<qos>/pod<uid>/<id> — the runtime is not in the path
  // (and, with the systemd driver, a runtime prefix this table does not know: "<prefix>-<id>.scope";
  // "*conmon-<id>" is a runtime's monitor process, not the container)
  { runtime: "kubepods", re: new RegExp(`(?:^|/)kubepods[^/]*(?:/[^/]+)*?/(?![a-z-]*conmon-)(?:[a-z-]+-)?(${HEX64})(?:\\.scope)?(?:/|$)`) },
  // lxc: /lxc/<name> (LXC < 4) and /lxc.payload.<name> (LXC 4+, LXD); lxc.monitor.<name> is the monitor
  { runtime: "lxc", re: /(?:^|\/)lxc\/([^/]+)/ },
  { runtime: "lxc", re: /(?:^|\/)lxc\.payload\.([^/]+)/ },
  // systemd-nspawn: machine.slice/systemd-nspawn@<name>.service/payload
  { runtime: "unknown", re: /(?:^|\/)systemd-nspawn@([^/]+)\.service\/payload(?:\/|$)/ },
];

function findContainer(path: string): { container: ContainerRef; end: number } | null {
  for (const { runtime, re } of CONTAINER_PATTERNS) {
    const match = re.exec(path);
    if (match?.[1]) {
      // end: where the container's own path component ends, to find the host unit holding it
      const end = match.index + match[0].length - (match[0].endsWith("/") ? 1 : 0);
      return { container: { runtime, id: match[1] }, end };
    }
  }
  return null;
}

/**
 * The last path component that is a systemd unit (.service or .scope); slices are not units a
 * process runs in. A user manager (systemd --user) moves itself into the init.scope of its own
 * tree (user@1000.service/init.scope); that names the enclosing unit, not pid 1's init.scope.
 */
function lastUnit(path: string): string | null {
  const parts = path.split("/");
  let found: string | null = null;
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = parts[i]!;
    if (!part.endsWith(".service") && !part.endsWith(".scope")) continue;
    if (found === null && part === "init.scope") {
      found = part;
      continue;
    }
    return part;
  }
  return found;
}

/**
 * Parses /proc/PID/cgroup ("hierarchy-id:controllers:path" per line).
 *
 * path: the v2 line ("0::/…") when it is not the root "/"; else the name=systemd line's; else the
 * first v1 line with a non-root path; else "/" (a process in no group, e.g. a kernel thread); null
 * for empty text. Hybrid hosts (v1 controllers + an empty unified tree, like this project's build
 * machine) leave "0::/" at the root while the real placement is in a v1 hierarchy, hence the fallbacks.
 *
 * unit: the last .service/.scope component of that path ("sshd.service", "session-3.scope";
 * "user@1000.service" for a user manager, which lives in user@1000.service/init.scope). For a
 * container, unit is set too: the unit at or above the container's own component — the host-side
 * transient scope ("docker-<id>.scope", "libpod-<id>.scope") that `systemctl status`
 * understands — and never a unit of a systemd running inside the container; null with the cgroupfs
 * driver (/docker/<id>), where no host unit exists.
 *
 * container: the first runtime pattern matching any line, preferring the chosen path.
 */
export function parseCgroup(text: string): { path: string | null; unit: string | null; container: ContainerRef | null } {
  let v2: string | null = null;
  let systemd: string | null = null;
  const v1: string[] = [];
  for (const line of text.split("\n")) {
    // The path may itself contain ':' (a unit name can), so split on the first two only.
    const first = line.indexOf(":");
    const second = first < 0 ? -1 : line.indexOf(":", first + 1);
    if (second < 0) continue;
    const hierarchy = line.slice(0, first);
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (!path.startsWith("/")) continue;
    if (hierarchy === "0" && controllers === "") v2 = path;
    else if (controllers === "name=systemd") systemd = path;
    else v1.push(path);
  }
  const all = [v2, systemd, ...v1].filter((p): p is string => p !== null);
  if (all.length === 0) return { path: null, unit: null, container: null };
  const path = all.find((p) => p !== "/") ?? "/";

  // The kernel appends " (deleted)" to the path of a cgroup removed under a process; the unit it
  // names is still the one the process ran in.
  const clean = path.endsWith(" (deleted)") ? path.slice(0, -" (deleted)".length) : path;
  let found = findContainer(clean);
  if (!found) {
    for (const other of all) {
      found = findContainer(other);
      if (found) break;
    }
    // The container came from another line; the chosen path says nothing of the host unit.
    if (found) return { path, unit: null, container: found.container };
  }
  const unit = lastUnit(found ? clean.slice(0, found.end) : clean);
  return { path, unit, container: found?.container ?? null };
}

// ---------------------------------------------------------------------------------------------
// Users

let passwd: { mtimeMs: number; names: Map<number, string> } | null = null;

function loadPasswd(): { mtimeMs: number; names: Map<number, string> } {
  const names = new Map<number, string>();
  let mtimeMs = -1;
  try {
    mtimeMs = statSync("/etc/passwd").mtimeMs;
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const [name, , uid] = line.split(":", 3);
      const n = Number(uid);
      // The first entry wins, as getpwuid() does for duplicate uids.
      if (name && uid !== undefined && uid !== "" && Number.isInteger(n) && !names.has(n)) names.set(n, name);
    }
  } catch (error) {
    if (!isExpected(error)) throw error;
  }
  return { mtimeMs, names };
}

/** The user name of a uid from /etc/passwd (cached; re-read on a miss when the file changed), else the uid as text. */
export function userName(uid: number): string {
  passwd ??= loadPasswd();
  let name = passwd.names.get(uid);
  if (name === undefined) {
    let mtimeMs = -1;
    try {
      mtimeMs = statSync("/etc/passwd").mtimeMs;
    } catch {
      // no /etc/passwd (a minimal container): numbers it is
    }
    if (mtimeMs !== passwd.mtimeMs) {
      passwd = loadPasswd();
      name = passwd.names.get(uid);
    }
  }
  return name ?? String(uid);
}

// ---------------------------------------------------------------------------------------------
// Processes

/** All pids (thread-group leaders) in /proc, ascending. */
export function listPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const c = entry.charCodeAt(0);
    if (c >= 48 && c <= 57) pids.push(Number(entry));
  }
  return pids.sort((a, b) => a - b);
}

/** Reads one process; null when it is gone (it exited between listing and reading) or its stat is unreadable. */
export function readProcess(pid: number): ProcessInfo | null {
  const dir = `/proc/${pid}`;
  const statText = readText(`${dir}/stat`);
  const stat = statText === null ? null : parseStat(statText);
  if (!stat) return null;
  const comm = readText(`${dir}/comm`);
  const status = readText(`${dir}/status`);
  // comm and status are world-readable: failing here means the process exited after its stat was read.
  if (comm === null || status === null) return null;
  const name = comm.replace(/\n$/, "");

  // Uid: real, effective, saved, fs — ps's USER is the effective one.
  const uid = Number(statusField(status, "Uid")?.split(/\s+/)[1] ?? Number.NaN);

  const rawCmdline = readText(`${dir}/cmdline`) ?? "";
  // Arguments end in NUL; a process that rewrote its argv (postgres, nginx workers) may not.
  const cmdline = rawCmdline === "" ? [] : rawCmdline.replace(/\0$/, "").split("\0");
  // readText decoded as latin1 to never fail; most argv is UTF-8, so re-decode it.
  const decoded = cmdline.map((arg) => (/[\x80-\xff]/.test(arg) ? Buffer.from(arg, "latin1").toString("utf8") : arg));
  const decodedName = /[\x80-\xff]/.test(name) ? Buffer.from(name, "latin1").toString("utf8") : name;

  const cgroupText = readText(`${dir}/cgroup`);
  const cgroup = cgroupText === null ? { path: null, unit: null, container: null } : parseCgroup(cgroupText);
  const netLink = readLink(`${dir}/ns/net`);

  return {
    pid,
    ppid: stat.ppid,
    name: decodedName,
    uid: Number.isInteger(uid) ? uid : -1,
    user: Number.isInteger(uid) ? userName(uid) : "?",
    cmdline: decoded,
    command_line: decoded.length > 0 ? decoded.join(" ") : `[${decodedName}]`,
    cgroup: cgroup.path,
    unit: cgroup.unit,
    container: cgroup.container,
    netns: netLink === null ? null : bracketedInode(netLink, "net:["),
    start_time_ticks: stat.start_time_ticks,
  };
}

// ---------------------------------------------------------------------------------------------
// Socket inodes

export interface SocketHolder {
  pid: number;
  fd: number;
}

/**
 * Socket inode → the processes holding it, from readlink of every /proc/PID/fd/N ("socket:[12345]").
 *
 * This replaces `ss -p`, whose cost grows superlinearly with the socket count. Measured on the
 * build VM with 100k loopback TCP sockets: `ss -tnpaH` 4.8 s; `ss -tnaeH` 0.22 s + this 0.51 s.
 * One readdir per process and one readlink per fd; non-socket links (files, pipes, anon_inode)
 * are rejected by two char codes. The readlinks are kernel time (~4 µs each, the same from
 * python), so JS-side tricks do not help; readlinkat on an open fd dir would save ~15%.
 *
 * unreadable: pids whose fds could not be listed or resolved (EACCES: another user's process when
 * not root, or a process that fails the kernel's ptrace access check even for root) — their
 * sockets are missing from the map (sockets found before the refusal stay), and callers should
 * say so rather than report those sockets as ownerless. A pid that exits mid-scan is simply absent.
 */
export function mapSocketInodes(pids?: number[]): { byInode: Map<number, SocketHolder[]>; unreadable: number[] } {
  const byInode = new Map<number, SocketHolder[]>();
  const unreadable: number[] = [];
  for (const pid of pids ?? listPids()) {
    const dir = `/proc/${pid}/fd/`;
    let fds: string[];
    try {
      fds = readdirSync(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EACCES" || code === "EPERM") {
        // Kernel threads and zombies hold no fds (and have an empty cmdline): nothing is hidden.
        if (readText(`/proc/${pid}/cmdline`)) unreadable.push(pid);
      } else if (code !== "ENOENT" && code !== "ESRCH") throw error;
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(dir + fd);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // The fd was closed (or the process exited) since the readdir.
        if (code === "ENOENT" || code === "ESRCH") continue;
        // Listing fds needs only read permission on the directory, but each readlink passes a
        // ptrace access check; a process that denies it (non-dumpable, another user's, an LSM —
        // this project's sandbox pid 1 denies even root) denies it for every fd.
        if (code === "EACCES" || code === "EPERM") {
          unreadable.push(pid);
          break;
        }
        throw error;
      }
      // "socket:[" — 's' then ':' at 6 rejects "/path…", "pipe:[…]", "anon_inode:…" without a substring.
      if (link.charCodeAt(0) !== 115 || link.charCodeAt(6) !== 58 || !link.startsWith("socket:[")) continue;
      const inode = Number(link.slice(8, -1));
      const holder = { pid, fd: Number(fd) };
      const holders = byInode.get(inode);
      if (holders) holders.push(holder);
      else byInode.set(inode, [holder]);
    }
  }
  return { byInode, unreadable };
}
