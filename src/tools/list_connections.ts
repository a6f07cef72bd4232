import { z } from "zod";
import { completenessShape } from "../events/completeness.ts";
import { getMonitor } from "../events/monitor.ts";
import { queryEvents } from "../events/query.ts";
import { eventFilterInput, eventViewSchema, filterOf, MAX_SINCE_S, viewOf } from "../events/view.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export const MAX_LIST = 1_000;

export default defineTool({
  name: "list_connections",
  title: "Recorded connections",
  description:
    "Connection events the background monitor recorded (also for processes that have exited): newest first, with " +
    "pid, command, destination ip/port, address family, protocol, socket type, return code, latency and wall time. " +
    "Filters: pid, command (name or program path), destination (IP or CIDR), port, type, since (seconds ago). " +
    "group_by_pid=true groups them per process.",
  toolset: "events",
  input: {
    ...eventFilterInput,
    destination: z.string().min(1).optional().describe("Only events whose remote end is this IP or in this CIDR block"),
    since: z.number().positive().max(MAX_SINCE_S).default(600).describe("Look back this many seconds (default 600)"),
    limit: z.number().int().positive().max(MAX_LIST).default(100).describe(`Most events to return (at most ${MAX_LIST})`),
    group_by_pid: z.boolean().default(false).describe("Group the returned events by process"),
  },
  output: {
    source: z.string(),
    window: z.object({ since: z.string(), until: z.string() }),
    ...completenessShape,
    matched: z.number(),
    returned: z.number(),
    truncated: z.boolean(),
    hint: z.string().optional(),
    events: z.array(eventViewSchema).optional(),
    processes: z
      .array(z.object({ pid: z.number(), command: z.string(), events: z.number(), connections: z.array(eventViewSchema) }))
      .optional(),
    history: z.object({ events: z.number(), oldest: z.string().nullable() }).describe("what the store holds in all"),
  },
  annotations: READ_ONLY,
  handler: async (args) => {
    const monitor = getMonitor();
    const filter = filterOf(args);
    const until = Date.now();
    const sinceMs = until - args.since * 1000;
    monitor.sync();
    const { events, matched } = queryEvents(monitor.store, {
      pid: filter.pid,
      command: filter.command,
      port: filter.port,
      types: filter.types,
      remote_cidr: filter.destination,
      sinceMs,
      untilMs: until,
      limit: args.limit,
      order: "newest",
    });
    const views = events.map(viewOf);
    const stats = monitor.store.stats();
    const truncated = matched > views.length;
    const base = {
      source: monitor.source,
      window: { since: new Date(sinceMs).toISOString(), until: new Date(until).toISOString() },
      ...monitor.completeness(sinceMs, until),
      matched,
      returned: views.length,
      truncated,
      ...(truncated ? { hint: `showing the newest ${views.length} of ${matched}: narrow with pid, command, destination, port, type or since, or raise limit` } : {}),
      history: { events: stats.events, oldest: stats.oldest_ms === null ? null : new Date(stats.oldest_ms).toISOString() },
    };
    if (!args.group_by_pid) return { ...base, events: views };
    const groups = new Map<number, { pid: number; command: string; events: number; connections: typeof views }>();
    for (const view of views) {
      const group = groups.get(view.pid) ?? { pid: view.pid, command: view.command, events: 0, connections: [] };
      group.events++;
      group.connections.push(view);
      groups.set(view.pid, group);
    }
    return { ...base, processes: [...groups.values()].sort((a, b) => b.events - a.events) };
  },
});
