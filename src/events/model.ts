// Connection events: what a probe line becomes, what the store keeps and what the tools answer.
// One shape for both sources (eBPF and ss polling), so every answer can say which one it used.
import { z } from "zod";

export const EVENT_TYPES = ["connect", "accept", "connect_failed", "close", "listen", "exec", "exit"] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const EVENT_SOURCES = ["ebpf", "ss-poll"] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

export const eventSchema = z.object({
  /** Wall time in ms since the epoch (the probe's monotonic ns, converted by the supervisor). */
  ts_ms: z.number(),
  type: z.enum(EVENT_TYPES).describe(
    "connect: a TCP connection this process made was established (or a UDP/Unix connect() returned, see return_code); " +
      "accept: a TCP connection to a local listener was established; connect_failed: a TCP connect that never got " +
      "established (reason says why); close: a TCP connection ended (duration, bytes); listen: a socket started " +
      "listening; exec/exit: a process started a program / ended",
  ),
  source: z.enum(EVENT_SOURCES).describe("ebpf: kernel tracepoints, complete; ss-poll: sampled from ss, misses short connections"),
  pid: z.number().describe("0 when unknown"),
  ppid: z.number().nullable(),
  uid: z.number().nullable(),
  comm: z.string().describe("the kernel's process name (15 characters at most); '' when unknown"),
  protocol: z.enum(["tcp", "udp", "unix"]).nullable(),
  family: z.enum(["ipv4", "ipv6", "unix"]).nullable(),
  local_ip: z.string().nullable(),
  local_port: z.number().nullable(),
  remote_ip: z.string().nullable(),
  remote_port: z.number().nullable(),
  /** Unix connect: the socket path ("@name" when abstract); exec: the program's path. */
  path: z.string().nullable(),
  /** connect() syscall events (UDP, Unix): its return value, 0 or -errno. */
  return_code: z.number().nullable(),
  reason: z.string().nullable().describe("connect_failed: refused, timeout or other; connect with return_code < 0: the errno name"),
  latency_us: z.number().nullable().describe("connect and connect_failed (TCP): from SYN sent to established or failed"),
  duration_ms: z.number().nullable().describe("close: how long the connection was established; null when it began before the probe"),
  bytes_sent: z.number().nullable(),
  bytes_received: z.number().nullable(),
  exit_code: z.number().nullable(),
});
export type ConnectionEvent = z.infer<typeof eventSchema>;

/** An event with every optional field null: sources fill in what they know. */
export function makeEvent(fields: Partial<ConnectionEvent> & Pick<ConnectionEvent, "ts_ms" | "type" | "source">): ConnectionEvent {
  return {
    pid: 0,
    ppid: null,
    uid: null,
    comm: "",
    protocol: null,
    family: null,
    local_ip: null,
    local_port: null,
    remote_ip: null,
    remote_port: null,
    path: null,
    return_code: null,
    reason: null,
    latency_us: null,
    duration_ms: null,
    bytes_sent: null,
    bytes_received: null,
    exit_code: null,
    ...fields,
  };
}
