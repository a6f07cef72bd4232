import { z } from "zod";
import { analyzePatterns, patternsSchema } from "../events/analysis.ts";
import { completenessShape } from "../events/completeness.ts";
import { getMonitor } from "../events/monitor.ts";
import { analysisFilter, analysisInput } from "../events/view.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "analyze_patterns",
  title: "Connection patterns",
  description:
    "Patterns in the recorded connection history over a window: top destinations, protocol mix, per-process " +
    "fan-out (distinct destinations), failure rates, periodic connections to one destination (beaconing: regular " +
    "intervals) and new listeners. Optionally for one pid or command.",
  toolset: "events",
  input: analysisInput(3600),
  output: { source: z.string(), ...completenessShape, ...patternsSchema.shape },
  annotations: READ_ONLY,
  handler: async (args) => {
    const monitor = getMonitor();
    monitor.sync();
    const filter = analysisFilter(args);
    return { source: monitor.source, ...monitor.completeness(filter.sinceMs, filter.untilMs), ...analyzePatterns(monitor.store, filter) };
  },
});
