import { z } from "zod";
import { connectionSummary, summarySchema } from "../events/analysis.ts";
import { getMonitor } from "../events/monitor.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "get_connection_summary",
  title: "Connection summary",
  description:
    "For a process (pid) or a command over a window: connection attempts, established, failed by reason, " +
    "UDP/Unix connects, accepted, closed, connect latency (avg, p50, p95, max), top destinations and bytes, from " +
    "the recorded history (also for processes that have exited). Answers questions like 'what did curl connect " +
    "to in the last ten minutes, and did it fail?'.",
  toolset: "events",
  input: {
    pid: z.number().int().positive().optional().describe("Only this process"),
    command: z.string().min(1).optional().describe("Only processes whose name or program path contains this"),
    process: z.string().min(1).optional().describe("Alias of command"),
    since: z.number().positive().default(600).describe("Window: this many seconds back from now (default 600)"),
  },
  output: { source: z.string(), ...summarySchema.shape },
  annotations: READ_ONLY,
  handler: async (args) => {
    const monitor = getMonitor();
    monitor.store.flush();
    const now = Date.now();
    return {
      source: monitor.source,
      ...connectionSummary(monitor.store, { pid: args.pid, command: args.command ?? args.process, sinceMs: now - args.since * 1000, untilMs: now }),
    };
  },
});
