import { z } from "zod";
import { connectionSummary, summarySchema } from "../events/analysis.ts";
import { completenessShape } from "../events/completeness.ts";
import { getMonitor } from "../events/monitor.ts";
import { analysisFilter, analysisInput } from "../events/view.ts";
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
  input: analysisInput(600),
  output: { source: z.string(), ...completenessShape, ...summarySchema.shape },
  annotations: READ_ONLY,
  handler: async (args) => {
    const monitor = getMonitor();
    monitor.sync();
    const filter = analysisFilter(args);
    return { source: monitor.source, ...monitor.completeness(filter.sinceMs, filter.untilMs), ...connectionSummary(monitor.store, filter) };
  },
});
