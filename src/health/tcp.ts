// TCP health: the trace_tcp_health probe's in-kernel counts of retransmits and resets per
// connection, joined with the processes holding the sockets, and rolled up per process and per
// destination for get_tcp_health.
import { z } from "zod";
import { formatEndpoint } from "../snapshot/cidr.ts";
import type { SocketOwners } from "./kernel.ts";
import { type ProbeWindow, windowFields } from "./window.ts";

export const TCP_PROBE = "trace_tcp_health";

/** include/net/tcp_states.h */
const TCP_STATES: Record<number, string> = {
  1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
  7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV",
};

type Kind = "retransmits" | "resets_sent" | "resets_received";
const KINDS: Record<string, Kind> = {
  tcp_retransmit_skb: "retransmits",
  tcp_send_reset: "resets_sent",
  tcp_receive_reset: "resets_received",
};

export interface TcpKey {
  kind: Kind;
  family: number;
  laddr: string;
  lport: number;
  raddr: string;
  rport: number;
  inode: number;
  state: number;
}

/** "tracepoint:tcp:tcp_retransmit_skb,4,10.0.0.1,40312,10.0.1.2,5201,123456,1" → its fields; null if not ours. */
export function parseTcpKey(key: string): TcpKey | null {
  const parts = key.split(",");
  if (parts.length !== 8) return null;
  const kind = KINDS[parts[0]!.split(":").pop()!];
  if (!kind) return null;
  const [, family, laddr, lport, raddr, rport, inode, state] = parts;
  return { kind, family: Number(family), laddr: laddr!, lport: Number(lport), raddr: raddr!, rport: Number(rport), inode: Number(inode), state: Number(state) };
}

const counts = { retransmits: z.number(), resets_sent: z.number(), resets_received: z.number() };
type Counts = { retransmits: number; resets_sent: number; resets_received: number };
const zero = (): Counts => ({ retransmits: 0, resets_sent: 0, resets_received: 0 });
/** Most events first. */
const byEvents = (a: Counts, b: Counts) => b.retransmits + b.resets_sent + b.resets_received - (a.retransmits + a.resets_sent + a.resets_received);

const connectionSchema = z.object({
  local: z.string(),
  remote: z.string(),
  state: z.string().describe("TCP state at the last event"),
  pid: z.number().nullable(),
  command: z.string().nullable(),
  ...counts,
  retransmits_per_second: z.number(),
});

export const tcpHealthSchema = z.object({
  ...windowFields,
  port_filter: z.number().nullable(),
  totals: z.object({ ...counts, retransmits_per_second: z.number(), resets_per_second: z.number() }),
  connections: z.array(connectionSchema).describe("Per connection (and socket), most events first"),
  by_process: z.array(z.object({ pid: z.number().nullable(), command: z.string(), connections: z.number(), ...counts })),
  by_destination: z.array(z.object({ remote: z.string(), connections: z.number(), ...counts })).describe("Per remote address:port"),
  truncated: z.boolean(),
  note: z.string(),
});
export type TcpHealth = z.infer<typeof tcpHealthSchema>;

const rate = (n: number, seconds: number) => (seconds > 0 ? Math.round((n / seconds) * 100) / 100 : 0);

/** The socket inodes in a @tcp map (to name their processes while they are open). */
export function tcpInodes(map: Map<string, number>): number[] {
  return [...map.keys()].map((key) => parseTcpKey(key)?.inode ?? 0);
}

export interface TcpFilter {
  port: number | null;
  pid: number | null;
  /** Whether a remote address is wanted (null: all). */
  remote: ((ip: string) => boolean) | null;
}

/** Pure: the answer's body from the probe's counts and the socket owners. */
export function summarizeTcp(map: Map<string, number>, owners: Pick<SocketOwners, "get">, durationS: number, filter: TcpFilter, limit: number) {
  const connections = new Map<string, z.infer<typeof connectionSchema>>();
  for (const [text, n] of map) {
    const key = parseTcpKey(text);
    if (!key) continue;
    if (filter.remote && !filter.remote(key.raddr)) continue;
    const owner = owners.get(key.inode);
    if (filter.pid !== null && owner?.pid !== filter.pid) continue;
    const id = `${key.laddr},${key.lport},${key.raddr},${key.rport},${key.inode}`;
    const row = connections.get(id) ?? {
      local: formatEndpoint(key.laddr, key.lport),
      remote: formatEndpoint(key.raddr, key.rport),
      state: TCP_STATES[key.state] ?? (key.state === 0 ? "no socket" : String(key.state)),
      pid: owner?.pid ?? null,
      command: owner?.command ?? (key.inode === 0 ? null : "(socket closed)"),
      ...zero(),
      retransmits_per_second: 0,
    };
    row[key.kind] += n;
    row.retransmits_per_second = rate(row.retransmits, durationS);
    connections.set(id, row);
  }
  const rows = [...connections.values()].sort(byEvents);
  const totals = zero();
  const processes = new Map<string, { pid: number | null; command: string; connections: number } & Counts>();
  const destinations = new Map<string, { remote: string; connections: number } & Counts>();
  for (const row of rows) {
    const processKey = row.pid === null ? `none:${row.command ?? ""}` : String(row.pid);
    const process = processes.get(processKey) ?? { pid: row.pid, command: row.command ?? "(no socket: reset for a closed port)", connections: 0, ...zero() };
    const destination = destinations.get(row.remote) ?? { remote: row.remote, connections: 0, ...zero() };
    for (const kind of ["retransmits", "resets_sent", "resets_received"] as const) {
      totals[kind] += row[kind];
      process[kind] += row[kind];
      destination[kind] += row[kind];
    }
    process.connections++;
    destination.connections++;
    processes.set(processKey, process);
    destinations.set(row.remote, destination);
  }
  const busiest = <T extends Counts>(list: T[]) => list.sort(byEvents).slice(0, 30);
  return {
    totals: { ...totals, retransmits_per_second: rate(totals.retransmits, durationS), resets_per_second: rate(totals.resets_sent + totals.resets_received, durationS) },
    connections: rows.slice(0, limit),
    by_process: busiest([...processes.values()]),
    by_destination: busiest([...destinations.values()]),
    truncated: rows.length > limit,
    note:
      "Retransmits: segments sent again (loss, congestion, a peer that stopped answering). resets_sent: RSTs this host sent " +
      "(a closed port, an aborted connection); resets_received: RSTs it got. A loopback reset shows on both sockets. " +
      "pid is the process holding the socket when ipcscope first saw it (null: already closed, or no socket).",
  };
}

export function tcpHealth(window: ProbeWindow, owners: SocketOwners, filter: TcpFilter, limit: number): TcpHealth {
  const map = window.counts("@tcp");
  owners.resolve(tcpInodes(map));
  const fields = window.fields();
  return { ...fields, port_filter: filter.port, ...summarizeTcp(map, owners, fields.duration_s, filter, limit) };
}
