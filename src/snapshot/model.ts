// The public shape of a snapshot and of the IPC graph. Field names of the RHEL IPC analyzer's
// output (process_connections, transport_protocol, local_address, remote_address, status,
// identified_application_protocol) are kept so that prompts written for it keep working; the
// rest stands beside them.
import { z } from "zod";

export const DIRECTIONS = ["listen", "inbound", "outbound", "local", "unconnected"] as const;

export const connectionSchema = z.object({
  transport_protocol: z.enum(["TCP", "UDP", "RAW", "UNIX"]),
  family: z.enum(["ipv4", "ipv6", "unix"]),
  local_address: z.string().describe("ip:port ([ipv6]:port), or the Unix socket path"),
  remote_address: z.string().describe("ip:port, `*:*` when unconnected, or the Unix peer (path or `peer inode N`)"),
  status: z.string().describe("ss state: LISTEN, ESTAB, UNCONN, TIME-WAIT, SYN-SENT, CLOSE-WAIT, ..."),
  direction: z.enum(DIRECTIONS).describe(
    "listen: waits for connections (TCP LISTEN, or a bound UDP socket); inbound: accepted on a local listening port; " +
      "outbound: made from here; local: a Unix socket; unconnected: neither",
  ),
  loopback: z.boolean().describe("both ends are on this host's loopback"),
  local_port: z.number().nullable(),
  remote_port: z.number().nullable(),
  remote_ip: z.string().nullable(),
  identified_application_protocol: z.string().describe("ssh, https, postgresql, dbus, ... or unknown"),
  protocol_confidence: z.enum(["high", "medium", "low"]),
  protocol_reason: z.string().describe("which rule identified it: listening port, well-known remote port, process name, socket path"),
  inode: z.number().nullable(),
  uid: z.number().nullable(),
  recv_q: z.number(),
  send_q: z.number(),
  netns: z.number().nullable().describe("network namespace inode"),
  peer_inode: z.number().nullable().optional().describe("Unix: the other end's socket inode"),
});
export type Connection = z.infer<typeof connectionSchema>;

export const processSchema = z.object({
  pid: z.number(),
  ppid: z.number().nullable(),
  name: z.string(),
  user: z.string(),
  uid: z.number().nullable(),
  command_line: z.string(),
  unit: z.string().nullable().describe("systemd unit or scope, from /proc/PID/cgroup"),
  container: z.object({ runtime: z.string(), id: z.string() }).nullable(),
  netns: z.number().nullable(),
  connections: z.array(connectionSchema),
  connections_total: z.number().describe("this process's sockets that match the filters, before the limit"),
});
export type ProcessEntry = z.infer<typeof processSchema>;

export const snapshotSchema = z.object({
  source: z.string().describe("where the data came from"),
  taken_at: z.string(),
  elapsed_ms: z.number(),
  totals: z.object({
    processes: z.number().describe("processes with at least one socket (all, before filters)"),
    sockets: z.number(),
    by_transport: z.record(z.string(), z.number()),
    by_state: z.record(z.string(), z.number()),
    listening: z.number(),
    namespaces: z.number(),
    sockets_without_process: z.number().describe("e.g. TIME-WAIT, or held by processes we cannot see"),
  }),
  matched: z.object({ processes: z.number(), sockets: z.number() }).describe("after the filters, before the limit"),
  returned: z.object({ processes: z.number(), sockets: z.number() }),
  truncated: z.boolean(),
  hint: z.string().optional().describe("how to narrow the answer when truncated"),
  warnings: z.array(z.string()),
  process_connections: z.array(processSchema),
});
export type Snapshot = z.infer<typeof snapshotSchema>;
