// What the event tools share: the filter vocabulary (pid, command, port, type, destination) as zod
// inputs and as a predicate for live events, and the answer shape of one event. The answer keeps
// mcp-ebpf's names (command, destination ip/port, address family, socket type, return code, wall
// time) and leaves out the fields an event does not have, to spend an agent's tokens on events.
import { z } from "zod";
import { ToolError } from "../errors.ts";
import { cidrContains, parseCidr, type Cidr } from "../snapshot/cidr.ts";
import { EVENT_TYPES, type ConnectionEvent, type EventType } from "./model.ts";

export const eventFilterInput = {
  pid: z.number().int().positive().optional().describe("Only this process"),
  command: z.string().min(1).optional().describe("Only processes whose name (or program path, for history) contains this, case-insensitive"),
  process: z.string().min(1).optional().describe("Alias of command"),
  port: z.number().int().min(0).max(65535).optional().describe("Only events with this local or remote port"),
  type: z
    .union([z.enum(EVENT_TYPES), z.array(z.enum(EVENT_TYPES)).min(1)])
    .optional()
    .describe("Only these event types: connect, accept, connect_failed, close, listen, exec, exit"),
};

export interface EventFilter {
  pid?: number;
  command?: string;
  port?: number;
  types?: EventType[];
  destination?: Cidr;
}

/** The tools' arguments as a filter; a `destination` that is neither an IP nor a CIDR block is refused here, for every tool. */
export function filterOf(args: { pid?: number; command?: string; process?: string; port?: number; type?: EventType | EventType[]; destination?: string }): EventFilter {
  return {
    pid: args.pid,
    command: args.command ?? args.process,
    port: args.port,
    types: args.type === undefined ? undefined : [args.type].flat(),
    destination: args.destination === undefined ? undefined : parseDestination(args.destination),
  };
}

/** "10.0.0.5" or "10.0.0.0/8" → a block. */
function parseDestination(value: string): Cidr {
  const cidr = parseCidr(value.includes("/") ? value : `${value}/${value.includes(":") ? 128 : 32}`);
  if (!cidr) throw new ToolError(`destination: "${value}" is not an IP address or CIDR block (e.g. 10.0.0.5 or 10.0.0.0/8)`);
  return cidr;
}

/** The live-event predicate (history filters the same way in SQL, see query.ts). */
export function eventMatches(event: ConnectionEvent, filter: EventFilter): boolean {
  if (filter.pid !== undefined && event.pid !== filter.pid) return false;
  if (filter.command) {
    // The process name, and for exec events the program path (a Unix connect's path is a socket's, not the program's).
    const needle = filter.command.toLowerCase();
    const program = event.type === "exec" ? (event.path ?? "").toLowerCase() : "";
    if (!event.comm.toLowerCase().includes(needle) && !program.includes(needle)) return false;
  }
  if (filter.port !== undefined && event.local_port !== filter.port && event.remote_port !== filter.port) return false;
  if (filter.types && !filter.types.includes(event.type)) return false;
  if (filter.destination && (event.remote_ip === null || !cidrContains(filter.destination, event.remote_ip))) return false;
  return true;
}

export const eventViewSchema = z.object({
  wall_time: z.string(),
  type: z.enum(EVENT_TYPES),
  pid: z.number(),
  command: z.string(),
  ppid: z.number().optional(),
  uid: z.number().optional(),
  protocol: z.string().optional(),
  address_family: z.string().optional(),
  socket_type: z.enum(["stream", "dgram"]).optional(),
  local_ip: z.string().optional(),
  local_port: z.number().optional(),
  destination_ip: z.string().optional(),
  destination_port: z.number().optional(),
  path: z.string().optional(),
  return_code: z.number().optional(),
  reason: z.string().optional(),
  latency_us: z.number().optional(),
  duration_ms: z.number().optional(),
  bytes_sent: z.number().optional(),
  bytes_received: z.number().optional(),
  exit_code: z.number().optional(),
  source: z.string(),
});
export type EventView = z.infer<typeof eventViewSchema>;

export function viewOf(event: ConnectionEvent): EventView {
  const view: Record<string, unknown> = { wall_time: new Date(event.ts_ms).toISOString(), type: event.type, pid: event.pid, command: event.comm };
  const optional: [string, unknown][] = [
    ["ppid", event.ppid],
    ["uid", event.uid],
    ["protocol", event.protocol],
    ["address_family", event.family],
    ["socket_type", event.protocol === "tcp" ? "stream" : event.protocol === "udp" ? "dgram" : null],
    ["local_ip", event.local_ip],
    ["local_port", event.local_port],
    ["destination_ip", event.remote_ip],
    ["destination_port", event.remote_port],
    ["path", event.path],
    ["return_code", event.return_code],
    ["reason", event.reason],
    ["latency_us", event.latency_us],
    ["duration_ms", event.duration_ms],
    ["bytes_sent", event.bytes_sent],
    ["bytes_received", event.bytes_received],
    ["exit_code", event.exit_code],
  ];
  for (const [key, value] of optional) if (value !== null && value !== undefined) view[key] = value;
  view.source = event.source;
  return view as EventView;
}

/**
 * The longest look back: `since` far beyond it made the window's start an invalid Date (a 500).
 * History is kept a day by default, so a year is far more than any store holds.
 */
export const MAX_SINCE_S = 366 * 24 * 3600;

/** The inputs of the history analyses (summary, patterns): one process or command over a window. */
export function analysisInput(defaultSince: number) {
  return {
    pid: z.number().int().positive().optional().describe("Only this process"),
    command: z.string().min(1).optional().describe("Only processes whose name or program path contains this"),
    process: z.string().min(1).optional().describe("Alias of command"),
    since: z.number().positive().max(MAX_SINCE_S).default(defaultSince).describe(`Window: this many seconds back from now (default ${defaultSince})`),
  };
}

/** Those inputs as the analyses' filter, the window ending now. */
export function analysisFilter(args: { pid?: number; command?: string; process?: string; since: number }) {
  const now = Date.now();
  return { pid: args.pid, command: args.command ?? args.process, sinceMs: now - args.since * 1000, untilMs: now };
}
