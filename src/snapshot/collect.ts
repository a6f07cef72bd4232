// One pass over the host: every network namespace's sockets from `ss` (without -p: mapping inodes
// from /proc/*/fd ourselves is several times faster on busy hosts), joined with the processes
// that hold them. The snapshot tool and the IPC graph both start from this.
import { ToolError } from "../errors.ts";
import { exec, which } from "../util/exec.ts";
import { singleFlight } from "../util/single-flight.ts";
import { inNamespace, listNetworkNamespaces, type NetNamespace } from "./netns.ts";
import { listPids, mapSocketInodes, readProcess, type ProcessInfo } from "./proc.ts";
import { parseSs, type SsSocket } from "./ss.ts";

export interface HostSocket extends SsSocket {
  /** Inode of the network namespace the socket lives in. */
  netns: number | null;
  /** Processes holding a file descriptor of this socket (several after fork). */
  owners: { pid: number; fd: number }[];
}

export interface HostSockets {
  sockets: HostSocket[];
  processes: Map<number, ProcessInfo>;
  namespaces: NetNamespace[];
  warnings: string[];
  elapsedMs: number;
}

const NO_OWNERS: HostSocket["owners"] = [];

/** ss answers in milliseconds; seconds on a host with 100k+ sockets. */
const SS_TIMEOUT_MS = 30_000;
/** Namespaces read at once: each costs two ss runs. */
const NAMESPACE_CONCURRENCY = 4;

async function runSs(ns: NetNamespace, args: string[], kind: "inet" | "unix"): Promise<{ sockets: SsSocket[]; error?: string }> {
  const result = await exec(inNamespace(ns, ["ss", ...args]), { timeoutMs: SS_TIMEOUT_MS, spool: true });
  if (result.code !== 0) {
    return { sockets: [], error: `ss ${args.join(" ")} in netns ${ns.inode} failed: ${result.stderr.trim().split("\n")[0] ?? `exit ${result.code}`}` };
  }
  return { sockets: parseSs(result.stdout, kind).sockets };
}

/** Collections under way, by options. */
const shared = singleFlight<HostSockets>();

/**
 * Every socket of the host with its processes. Calls with the same options while one collection is
 * under way share it (fifty agents asking at once cost one ss run per namespace and one /proc scan,
 * not fifty); a call after it finished starts a new one. The result is shared, so it is read-only:
 * its consumers (build.ts, graph.ts, poll.ts, the prompt material) only read it.
 */
export function collectHostSockets(options: { unix?: boolean } = {}): Promise<HostSockets> {
  const unix = options.unix !== false;
  return shared(unix ? "inet+unix" : "inet", () => collectOnce(unix));
}

async function collectOnce(unix: boolean): Promise<HostSockets> {
  const started = performance.now();
  if (!which("ss")) throw new ToolError("ss (iproute2) is not installed, so sockets cannot be listed: install it (dnf install -y iproute, or apt-get install -y iproute2)");
  const warnings: string[] = [];
  const root = process.geteuid?.() === 0;
  // Other namespaces can only be entered by root; without it we see our own.
  const namespaces = root ? listNetworkNamespaces() : listNetworkNamespaces().filter((ns) => ns.is_host);

  // ss runs (into a spool file) while this process scans /proc: the two overlap on a busy host.
  const pending = (async () => {
    const sockets: HostSocket[] = [];
    for (let i = 0; i < namespaces.length; i += NAMESPACE_CONCURRENCY) {
      const batch = namespaces.slice(i, i + NAMESPACE_CONCURRENCY);
      const results = await Promise.all(
        batch.map(async (ns) => {
          const runs = [runSs(ns, ["-tuwnaeH"], "inet")];
          if (unix) runs.push(runSs(ns, ["-xaeH"], "unix"));
          return { ns, runs: await Promise.all(runs) };
        }),
      );
      for (const { ns, runs } of results) {
        for (const run of runs) {
          if (run.error) warnings.push(run.error);
          for (const socket of run.sockets) {
            const host = socket as HostSocket;
            host.netns = ns.inode;
            host.owners = NO_OWNERS;
            sockets.push(host);
          }
        }
      }
    }
    return sockets;
  })();
  const { byInode, unreadable } = mapSocketInodes(listPids());
  const sockets = await pending;

  const processes = new Map<number, ProcessInfo>();
  for (const socket of sockets) {
    if (socket.inode === null || socket.inode === 0) continue;
    socket.owners = byInode.get(socket.inode) ?? [];
    for (const owner of socket.owners) {
      if (!processes.has(owner.pid)) {
        const info = readProcess(owner.pid);
        if (info) processes.set(owner.pid, info);
      }
    }
  }
  if (!root) {
    warnings.push(
      `not running as root: the sockets of ${unreadable.length} process(es) of other users cannot be attributed ` +
        "(they count in sockets_without_process), and other network namespaces are not listed; run ipcscope as root",
    );
  } else if (unreadable.length > 0) {
    // Processes that exited are skipped silently; these exist but refuse even root (an LSM, a sandbox).
    const pids = unreadable.slice(0, 5).join(", ") + (unreadable.length > 5 ? ", …" : "");
    warnings.push(
      `${unreadable.length} process(es) refused to have their file descriptors read, even by root (pid ${pids}: an LSM or a sandbox); ` +
        "their sockets count in sockets_without_process",
    );
  }
  return { sockets, processes, namespaces, warnings, elapsedMs: Math.round(performance.now() - started) };
}
