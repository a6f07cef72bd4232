// Network namespaces: `ss` only sees the namespace it runs in, so a snapshot of a host with
// containers or `ip netns` namespaces runs ss once per namespace, through inNamespace().
import { readFileSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { which } from "../util/exec.ts";
import { bracketedInode, listPids, parseStat } from "./proc.ts";

/** Where `ip netns add NAME` bind-mounts a namespace so that it outlives its processes. */
export const NETNS_RUN_DIR = "/run/netns";

export interface NetNamespace {
  /** Inode of the namespace (the number in "net:[4026531840]"). */
  inode: number;
  /** The lowest pid inside it; null for a named namespace that no process is in (then `name` is set). */
  pid: number | null;
  /** Its name in /run/netns (the bind mount whose inode matches); the first in sort order if several. */
  name: string | null;
  /** The namespace of /proc/1 (or of kthreadd when pid 1 cannot be read) — the host's, when we run in the host's pid namespace. */
  is_host: boolean;
  /** Processes (kernel threads included) whose /proc/PID/ns/net is this namespace. */
  process_count: number;
}

function netnsInode(path: string): number | null {
  try {
    return bracketedInode(readlinkSync(path), "net:[");
  } catch {
    // gone (ENOENT/ESRCH) or not ours (EACCES when not root): this process tells us nothing
    return null;
  }
}

/**
 * Named namespaces in /run/netns → inode. A bind mount of a namespace stats as the nsfs inode
 * itself; a leftover plain file (the mount gone, e.g. after a crash) stats as a tmpfs file, told
 * apart by its device, which differs from nsfs's.
 */
function namedNamespaces(): Map<number, string> {
  const names = new Map<number, string>();
  let entries: string[];
  let nsfsDev: number;
  try {
    entries = readdirSync(NETNS_RUN_DIR).sort();
    nsfsDev = statSync("/proc/self/ns/net").dev;
  } catch {
    return names; // no /run/netns: nobody ran `ip netns add`
  }
  for (const entry of entries) {
    try {
      const stat = statSync(`${NETNS_RUN_DIR}/${entry}`);
      if (stat.dev === nsfsDev && !names.has(stat.ino)) names.set(stat.ino, entry);
    } catch {
      // removed while we looked
    }
  }
  return names;
}

/**
 * The host's namespace: /proc/1's; when pid 1 refuses (this project's sandbox init fails the ptrace
 * check even for root), kthreadd's — kernel threads always live in the initial namespace, and pid 2
 * with ppid 0 is kthreadd only in the initial pid namespace (in a container pid 2 is anything).
 */
function hostNetnsInode(): number | null {
  const init = netnsInode("/proc/1/ns/net");
  if (init !== null) return init;
  let stat: ReturnType<typeof parseStat> = null;
  try {
    stat = parseStat(readFileSync("/proc/2/stat", "latin1"));
  } catch {
    return null;
  }
  return stat?.ppid === 0 ? netnsInode("/proc/2/ns/net") : null;
}

/**
 * Every network namespace on the host: the distinct inodes of /proc/PID/ns/net, plus the named
 * ones in /run/netns that no process is in. The host's comes first, then by inode.
 * Processes we may not inspect (not root) are not counted.
 */
export function listNetworkNamespaces(): NetNamespace[] {
  const hostInode = hostNetnsInode();
  const byInode = new Map<number, NetNamespace>();
  for (const pid of listPids()) {
    const inode = netnsInode(`/proc/${pid}/ns/net`);
    if (inode === null) continue;
    const ns = byInode.get(inode);
    if (ns) ns.process_count++;
    else byInode.set(inode, { inode, pid, name: null, is_host: inode === hostInode, process_count: 1 });
  }
  for (const [inode, name] of namedNamespaces()) {
    const ns = byInode.get(inode);
    if (ns) ns.name = name;
    else byInode.set(inode, { inode, pid: null, name, is_host: inode === hostInode, process_count: 0 });
  }
  return [...byInode.values()].sort((a, b) => Number(b.is_host) - Number(a.is_host) || a.inode - b.inode);
}

/**
 * The argv that runs `argv` inside the namespace: unchanged for our own (the host's), else through
 * nsenter (util-linux, on every RHEL). A named namespace is entered by its /run/netns file, which
 * stays valid when the representative pid exits and, unlike `ip netns exec`, does not also
 * unshare a mount namespace and remount /sys; `ip netns exec` is the fallback without nsenter.
 * Only the network namespace changes, so `ss -p` there still resolves pids through our /proc.
 */
export function inNamespace(ns: NetNamespace, argv: string[]): string[] {
  // Compared with our own namespace rather than is_host: run inside some other namespace
  // (a container sharing the host's pid namespace), the host's needs nsenter too.
  if (ns.inode === netnsInode("/proc/self/ns/net")) return [...argv];
  const nsenter = which("nsenter") !== null;
  if (ns.name !== null) {
    return nsenter ? ["nsenter", `--net=${NETNS_RUN_DIR}/${ns.name}`, "--", ...argv] : ["ip", "netns", "exec", ns.name, ...argv];
  }
  if (ns.pid === null) throw new Error(`network namespace ${ns.inode} has neither a process nor a name to enter it by`);
  return ["nsenter", `--net=/proc/${ns.pid}/ns/net`, "--", ...argv];
}
