// From the host's sockets to the answer: each socket described (direction, protocol guess),
// grouped by process, filtered, and cut to a size an agent accepts.
import type { HostSocket, HostSockets } from "./collect.ts";
import { cidrContains, formatEndpoint, isLoopbackIp, type Cidr } from "./cidr.ts";
import type { Connection, ProcessEntry, Snapshot } from "./model.ts";
import type { ProcessInfo } from "./proc.ts";
import { identifyInet, identifyUnix, type ProtocolGuess } from "./protocols.ts";

/**
 * Agents refuse tool answers over ~25k tokens (~100k characters of JSON), and clients count the
 * text content and structuredContent alike: keep the JSON under 60k characters.
 */
export const MAX_ANSWER_CHARS = 60_000;
export const DEFAULT_LIMIT = 200;

export interface SnapshotFilters {
  pid?: number;
  command?: string;
  user?: string;
  port?: number;
  state?: string;
  protocol?: string;
  listening?: boolean;
  remote_cidr?: Cidr;
  include_unix?: boolean;
  limit?: number;
}

/** "ESTABLISHED" and friends as people write them → ss's spelling. */
const STATE_ALIASES: Record<string, string> = {
  ESTABLISHED: "ESTAB",
  LISTENING: "LISTEN",
  TIME_WAIT: "TIME-WAIT",
  CLOSE_WAIT: "CLOSE-WAIT",
  SYN_SENT: "SYN-SENT",
  SYN_RECV: "SYN-RECV",
  FIN_WAIT1: "FIN-WAIT-1",
  FIN_WAIT2: "FIN-WAIT-2",
  FIN_WAIT_1: "FIN-WAIT-1",
  FIN_WAIT_2: "FIN-WAIT-2",
  LAST_ACK: "LAST-ACK",
  UNCONNECTED: "UNCONN",
};
export function normalizeState(state: string): string {
  const upper = state.trim().toUpperCase();
  return STATE_ALIASES[upper.replace(/-/g, "_")] ?? upper;
}

/** Ports that wait for peers, per namespace: TCP LISTEN, and UDP sockets bound with no peer. */
export function listeningPorts(sockets: readonly HostSocket[]): Set<string> {
  const keys = new Set<string>();
  for (const socket of sockets) {
    if (socket.local.port === null) continue;
    if ((socket.transport === "tcp" && socket.state === "LISTEN") || (socket.transport === "udp" && socket.state === "UNCONN" && socket.peer.port === null)) {
      keys.add(`${socket.netns}/${socket.transport}/${socket.local.port}`);
    }
  }
  return keys;
}

const connected = (socket: HostSocket) => socket.peer.port !== null && socket.peer.address !== "*";

/** listen / inbound / outbound / unconnected / local: cheap, so the snapshot filters on it before describing anything. */
export function directionOf(socket: HostSocket, listening: Set<string>): Connection["direction"] {
  if (socket.transport === "unix") return socket.state === "LISTEN" ? "listen" : "local";
  if (socket.state === "LISTEN" || (socket.transport === "udp" && !connected(socket) && socket.local.port !== null)) return "listen";
  if (!connected(socket)) return "unconnected";
  if (socket.transport !== "raw" && socket.local.port !== null && listening.has(`${socket.netns}/${socket.transport}/${socket.local.port}`)) return "inbound";
  return "outbound";
}

/** The application protocol of one socket (see protocols.ts), for the snapshot and the IPC graph alike. */
export function guessProtocol(socket: HostSocket, listening: Set<string>, processName: string | null): ProtocolGuess {
  if (socket.transport === "unix") {
    const path = socket.local.address === "*" ? (socket.peer.address === "*" ? null : socket.peer.address) : socket.local.address;
    return identifyUnix({ path, processName });
  }
  return identifyInet({
    transport: socket.transport,
    state: socket.state,
    localPort: socket.local.port,
    remotePort: connected(socket) ? socket.peer.port : null,
    listening: (transport, port) => listening.has(`${socket.netns}/${transport}/${port}`),
    processName,
  });
}

export function describeSocket(socket: HostSocket, listening: Set<string>, processName: string | null): Connection {
  const guess = guessProtocol(socket, listening, processName);
  const base = {
    status: socket.state,
    direction: directionOf(socket, listening),
    identified_application_protocol: guess.protocol,
    protocol_confidence: guess.confidence,
    protocol_reason: guess.reason,
    inode: socket.inode,
    uid: socket.uid,
    recv_q: socket.recv_q,
    send_q: socket.send_q,
    netns: socket.netns,
  };
  if (socket.transport === "unix") {
    return {
      ...base,
      transport_protocol: "UNIX",
      family: "unix",
      local_address: socket.local.address,
      remote_address: socket.peer_inode ? `peer inode ${socket.peer_inode}` : socket.peer.address,
      loopback: true,
      local_port: null,
      remote_port: null,
      remote_ip: null,
      peer_inode: socket.peer_inode,
    };
  }
  const isConnected = connected(socket);
  return {
    ...base,
    transport_protocol: socket.transport === "tcp" ? "TCP" : socket.transport === "udp" ? "UDP" : "RAW",
    family: socket.local.address.includes(":") ? "ipv6" : "ipv4",
    local_address: formatEndpoint(socket.local.address, socket.local.port),
    remote_address: formatEndpoint(socket.peer.address, socket.peer.port),
    loopback: isConnected && isLoopbackIp(socket.local.address) && isLoopbackIp(socket.peer.address),
    local_port: socket.local.port,
    remote_port: socket.peer.port,
    remote_ip: isConnected ? socket.peer.address : null,
  };
}

/** The process-level filters (pid, command, user), shared by the snapshot and the IPC graph. */
export function processMatches(info: ProcessInfo, filters: Pick<SnapshotFilters, "pid" | "command" | "user">): boolean {
  if (filters.pid !== undefined && info.pid !== filters.pid) return false;
  if (filters.command) {
    const needle = filters.command.toLowerCase();
    if (!info.name.toLowerCase().includes(needle) && !info.command_line.toLowerCase().includes(needle)) return false;
  }
  if (filters.user && info.user !== filters.user && String(info.uid) !== filters.user) return false;
  return true;
}

/** The socket-level filters, on the raw socket: the protocol is guessed only when a filter asks for one. */
function socketMatches(
  socket: HostSocket,
  direction: Connection["direction"],
  filters: SnapshotFilters,
  protocolOf: () => string,
): boolean {
  const unix = socket.transport === "unix";
  const wanted = filters.protocol?.toLowerCase();
  if (unix && !filters.include_unix && wanted !== "unix") return false;
  if (filters.port !== undefined && (unix || (socket.local.port !== filters.port && socket.peer.port !== filters.port))) return false;
  if (filters.state && socket.state !== filters.state) return false; // normalized by the caller
  if (filters.listening && direction !== "listen") return false;
  if (wanted && socket.transport !== wanted && protocolOf() !== wanted) return false;
  if (filters.remote_cidr && (unix || !connected(socket) || !cidrContains(filters.remote_cidr, socket.peer.address))) return false;
  return true;
}

const DIRECTION_ORDER: Record<Connection["direction"], number> = { listen: 0, inbound: 1, outbound: 2, unconnected: 3, local: 4 };

interface Matched {
  socket: HostSocket;
  direction: Connection["direction"];
  /** The name the protocol guess weighs: the first owner's. */
  owner: string;
}

/**
 * Counts everything, filters on the raw sockets, and describes (formats, guesses the protocol of)
 * only the sockets it returns: on a host with 100k sockets the answer holds a few hundred.
 */
export function buildSnapshot(host: HostSockets, filters: SnapshotFilters = {}): Snapshot {
  const listening = listeningPorts(host.sockets);
  const byTransport: Record<string, number> = {};
  const byState: Record<string, number> = {};
  let withoutProcess = 0;
  let listeners = 0;
  const perProcess = new Map<number, Matched[]>();
  const owning = new Set<number>();
  const processOk = new Map<number, boolean>();
  const wantedState = filters.state ? normalizeState(filters.state) : undefined;
  const socketFilters = { ...filters, state: wantedState };

  for (const socket of host.sockets) {
    byTransport[socket.transport] = (byTransport[socket.transport] ?? 0) + 1;
    byState[socket.state] = (byState[socket.state] ?? 0) + 1;
    const direction = directionOf(socket, listening);
    if (direction === "listen") listeners++;
    // A socket shared after fork is held by several processes (and by one process at several fds).
    let owners: number[] = [];
    for (const { pid } of socket.owners) if (host.processes.has(pid) && !owners.includes(pid)) owners.push(pid);
    if (owners.length === 0) {
      withoutProcess++;
      continue;
    }
    for (const pid of owners) owning.add(pid);
    const owner = host.processes.get(owners[0]!)!.name;
    owners = owners.filter((pid) => {
      let ok = processOk.get(pid);
      if (ok === undefined) processOk.set(pid, (ok = processMatches(host.processes.get(pid)!, filters)));
      return ok;
    });
    if (owners.length === 0) continue;
    if (!socketMatches(socket, direction, socketFilters, () => guessProtocol(socket, listening, owner).protocol)) continue;
    const matched: Matched = { socket, direction, owner };
    for (const pid of owners) {
      const list = perProcess.get(pid);
      if (list) list.push(matched);
      else perProcess.set(pid, [matched]);
    }
  }

  const limit = filters.limit ?? DEFAULT_LIMIT;
  let matchedSockets = 0;
  for (const list of perProcess.values()) matchedSockets += list.length;
  // Busiest processes first: they are what a person asks about; ties by pid for stable output.
  const ordered = [...perProcess.entries()].sort((a, b) => b[1].length - a[1].length || a[0] - b[0]);
  const entries: ProcessEntry[] = [];
  let returnedSockets = 0;
  let chars = 2_000; // the envelope: totals, hint, warnings
  let truncated = false;
  for (const [pid, list] of ordered) {
    const info = host.processes.get(pid)!;
    list.sort((a, b) => DIRECTION_ORDER[a.direction] - DIRECTION_ORDER[b.direction] || (a.socket.local.port ?? 0) - (b.socket.local.port ?? 0));
    const entry: ProcessEntry = {
      pid,
      ppid: info.ppid,
      name: info.name,
      user: info.user,
      uid: info.uid,
      command_line: info.command_line.length > 500 ? `${info.command_line.slice(0, 497)}...` : info.command_line,
      unit: info.unit,
      container: info.container,
      netns: info.netns,
      connections: [],
      connections_total: list.length,
    };
    chars += JSON.stringify(entry).length;
    for (const { socket, owner } of list) {
      const connection = describeSocket(socket, listening, owner);
      const size = JSON.stringify(connection).length + 1;
      if (returnedSockets >= limit || chars + size > MAX_ANSWER_CHARS) {
        truncated = true;
        break;
      }
      entry.connections.push(connection);
      returnedSockets++;
      chars += size;
    }
    if (entry.connections.length === 0 && truncated) break;
    entries.push(entry);
    if (truncated) break;
  }

  return {
    source: `ss (no -p) in ${host.namespaces.length} network namespace(s), joined with /proc/*/fd`,
    taken_at: new Date().toISOString(),
    elapsed_ms: host.elapsedMs,
    totals: {
      processes: owning.size,
      sockets: host.sockets.length,
      by_transport: byTransport,
      by_state: byState,
      listening: listeners,
      namespaces: host.namespaces.length,
      sockets_without_process: withoutProcess,
    },
    matched: { processes: perProcess.size, sockets: matchedSockets },
    returned: { processes: entries.length, sockets: returnedSockets },
    truncated,
    ...(truncated
      ? {
          hint:
            `showing ${returnedSockets} of ${matchedSockets} matching sockets (busiest processes first): narrow with pid, command, ` +
            "port, state, protocol, listening=true or remote_cidr, or raise limit",
        }
      : {}),
    // A copy: the collection is shared by concurrent calls (collect.ts), this answer is not.
    warnings: [...host.warnings],
    process_connections: entries,
  };
}
