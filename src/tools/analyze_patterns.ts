import { z } from "zod";
import { analyzePatterns, patternsSchema } from "../events/analysis.ts";
import { getMonitor } from "../events/monitor.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "analyze_patterns",
  title: "Connection patterns",
  description:
    "Patterns in the recorded connection history over a window: top destinations, protocol mix, per-process " +
    "fan-out (distinct destinations), failure rates, periodic connections to one destination (beaconing: regular " +
    "intervals) and new listeners. Optionally for one pid or command.",
  toolset: "events",
  input: {
    pid: z.number().int().positive().optional().describe("Only this process"),
    command: z.string().min(1).optional().describe("Only processes whose name or program path contains this"),
    process: z.string().min(1).optional().describe("Alias of command"),
    since: z.number().positive().default(3600).describe("Window: this many seconds back from now (default 3600)"),
  },
  output: { source: z.string(), ...patternsSchema.shape },
  annotations: READ_ONLY,
  handler: async (args) => {
    const monitor = getMonitor();
    monitor.store.flush();
    const now = Date.now();
    return {
      source: monitor.source,
      ...analyzePatterns(monitor.store, { pid: args.pid, command: args.command ?? args.process, sinceMs: now - args.since * 1000, untilMs: now }),
    };
  },
});
