// Who talks to whom on this host. A loopback TCP/UDP connection's peer is the socket with the
// reversed 4-tuple in the same namespace; a Unix stream socket's peer is the inode ss -x reports.
import { z } from "zod";
import type { HostSocket, HostSockets } from "./collect.ts";
import { isLoopbackIp, unmapV4 } from "./cidr.ts";
import { guessProtocol, listeningPorts, processMatches } from "./build.ts";
import { identifyUnix } from "./protocols.ts";

export const graphNodeSchema = z.object({
  id: z.string().describe("p<pid>"),
  pid: z.number(),
  name: z.string(),
  user: z.string(),
  unit: z.string().nullable(),
  container: z.string().nullable(),
});
export const graphEdgeSchema = z.object({
  from: z.string().describe("node id of the client side (the one that connected)"),
  to: z.string().describe("node id of the server side (the listening port or the bound socket path)"),
  transport: z.enum(["tcp", "udp", "unix"]),
  endpoint: z.string().describe("the server's port, or the Unix socket path"),
  protocol: z.string(),
  count: z.number().describe("connections between the two over this endpoint"),
});
export const graphSchema = z.object({
  nodes: z.array(graphNodeSchema),
  edges: z.array(graphEdgeSchema),
  totals: z.object({ nodes: z.number(), edges: z.number(), connections: z.number(), unresolved: z.number().describe("local connections whose peer process could not be found") }),
  truncated: z.boolean(),
  mermaid: z.string().optional(),
  warnings: z.array(z.string()),
});
export type IpcGraph = z.infer<typeof graphSchema>;
type Edge = z.infer<typeof graphEdgeSchema>;

const MAX_EDGES = 300;

function tupleKey(netns: number | null, transport: string, localIp: string, localPort: number | null, peerIp: string, peerPort: number | null): string {
  return `${netns}|${transport}|${unmapV4(localIp)}|${localPort}|${unmapV4(peerIp)}|${peerPort}`;
}

export function buildIpcGraph(host: HostSockets, filters: { pid?: number; command?: string; mermaid?: boolean } = {}): IpcGraph {
  const listening = listeningPorts(host.sockets);
  const byTuple = new Map<string, HostSocket>();
  const byInode = new Map<string, HostSocket>();
  for (const socket of host.sockets) {
    if (socket.transport === "unix") {
      if (socket.inode) byInode.set(`${socket.netns}|${socket.inode}`, socket);
    } else if (socket.peer.port !== null && socket.peer.address !== "*") {
      byTuple.set(tupleKey(socket.netns, socket.transport, socket.local.address, socket.local.port, socket.peer.address, socket.peer.port), socket);
    }
  }
  const ownerOf = (socket: HostSocket) => socket.owners.map((owner) => owner.pid).find((pid) => host.processes.has(pid));

  const edges = new Map<string, Edge>();
  let connections = 0;
  let unresolved = 0;
  const add = (client: number, server: number, transport: Edge["transport"], endpoint: string, protocol: string) => {
    const key = `${client}|${server}|${transport}|${endpoint}`;
    const edge = edges.get(key) ?? { from: `p${client}`, to: `p${server}`, transport, endpoint, protocol, count: 0 };
    edge.count++;
    edges.set(key, edge);
    connections++;
  };

  for (const socket of host.sockets) {
    if (socket.transport === "unix") {
      // Each pair is seen from both ends: take it from the end without a path (the client) or, when
      // both or neither have one, from the lower inode.
      if (socket.state !== "ESTAB" || !socket.peer_inode || !socket.inode) continue;
      const peer = byInode.get(`${socket.netns}|${socket.peer_inode}`);
      if (!peer) continue;
      const mine = socket.local.address !== "*";
      const theirs = peer.local.address !== "*";
      if (mine && !theirs) continue;
      if (mine === theirs && socket.inode > peer.inode!) continue;
      const client = ownerOf(socket);
      const server = ownerOf(peer);
      if (client === undefined || server === undefined) {
        unresolved++;
        continue;
      }
      const path = theirs ? peer.local.address : mine ? socket.local.address : "(unnamed socketpair)";
      const name = host.processes.get(server)?.name ?? null;
      add(client, server, "unix", path, identifyUnix({ path: theirs || mine ? path : null, processName: name }).protocol);
      continue;
    }
    if (socket.transport === "raw" || socket.peer.port === null || socket.local.port === null) continue;
    if (!isLoopbackIp(socket.local.address) || !isLoopbackIp(socket.peer.address)) continue;
    // Take each connection from its client end: the end whose local port is not the listening one.
    if (listening.has(`${socket.netns}/${socket.transport}/${socket.local.port}`)) continue;
    const peer = byTuple.get(tupleKey(socket.netns, socket.transport, socket.peer.address, socket.peer.port, socket.local.address, socket.local.port));
    const client = ownerOf(socket);
    const server = peer ? ownerOf(peer) : undefined;
    if (client === undefined || server === undefined) {
      unresolved++;
      continue;
    }
    const name = host.processes.get(server)?.name ?? null;
    const guess = guessProtocol(socket, listening, name);
    add(client, server, socket.transport, String(socket.peer.port), guess.protocol);
  }

  let list = [...edges.values()];
  if (filters.pid !== undefined || filters.command) {
    const matches = (id: string) => {
      const info = host.processes.get(Number(id.slice(1)));
      return info !== undefined && processMatches(info, filters);
    };
    list = list.filter((edge) => matches(edge.from) || matches(edge.to));
  }
  list.sort((a, b) => b.count - a.count || a.from.localeCompare(b.from) || a.endpoint.localeCompare(b.endpoint));
  const truncated = list.length > MAX_EDGES;
  list = list.slice(0, MAX_EDGES);

  const ids = [...new Set(list.flatMap((edge) => [edge.from, edge.to]))];
  const nodes = ids.map((id) => {
    const info = host.processes.get(Number(id.slice(1)))!;
    return {
      id,
      pid: info.pid,
      name: info.name,
      user: info.user,
      unit: info.unit,
      container: info.container ? `${info.container.runtime}:${info.container.id.slice(0, 12)}` : null,
    };
  });
  const graph: IpcGraph = {
    nodes,
    edges: list,
    totals: { nodes: nodes.length, edges: list.length, connections, unresolved },
    truncated,
    // A copy: the collection is shared by concurrent calls (collect.ts), this answer is not.
    warnings: [...host.warnings],
  };
  if (filters.mermaid) graph.mermaid = toMermaid(graph);
  return graph;
}

/** Mermaid flowchart text: one node per process, one labelled arrow per edge. */
export function toMermaid(graph: Pick<IpcGraph, "nodes" | "edges">): string {
  const label = (text: string) => text.replace(/["<>|]/g, "'");
  const lines = ["graph LR"];
  for (const node of graph.nodes) lines.push(`  ${node.id}["${label(`${node.name} (${node.pid})`)}"]`);
  for (const edge of graph.edges) {
    const text = `${edge.transport} ${edge.endpoint}${edge.protocol !== "unknown" ? ` ${edge.protocol}` : ""}${edge.count > 1 ? ` x${edge.count}` : ""}`;
    lines.push(`  ${edge.from} -->|"${label(text)}"| ${edge.to}`);
  }
  return lines.join("\n");
}
