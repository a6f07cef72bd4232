import { z } from "zod";
import { DROPS_PROBE, dropKernel, dropList, dropListSchema, dropSampleSchema, rewriteForKernel } from "../health/drops.ts";
import { runWindow } from "../health/window.ts";
import { MAX_INLINE_SECONDS, MAX_JOB_SECONDS } from "../jobs.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "list_packet_drops",
  title: "Packet drops, one by one",
  description:
    "Individual packets the kernel dropped during `duration` seconds: time, drop reason, protocol, interface, " +
    "source and destination address:port, and the process holding the socket when known. The kernel prints at " +
    "most 100 drops a second (total_drops counts them all). For counts by reason, port or process use " +
    `get_packet_drop_summary. Inline at most ${MAX_INLINE_SECONDS} s; background=true returns a job_id.`,
  toolset: "health",
  input: {
    duration: z.number().positive().max(MAX_JOB_SECONDS).default(5).describe(`Seconds to watch (inline at most ${MAX_INLINE_SECONDS})`),
    port: z.number().int().min(1).max(65535).optional().describe("Only TCP/UDP packets to this destination port"),
    max_events: z.number().int().positive().max(10_000).default(100).describe("Most drops to return"),
    background: z.boolean().default(false).describe("Run as a background job and return its job_id at once"),
  },
  output: dropListSchema.shape,
  annotations: READ_ONLY,
  handler: async (args, ctx) => {
    const kernel = dropKernel();
    return runWindow(
      "list_packet_drops",
      { probe: DROPS_PROBE, args: [String(args.port ?? 0)], durationS: args.duration, sample: dropSampleSchema, maxSamples: args.max_events, rewrite: rewriteForKernel(kernel), background: args.background },
      (window) => dropList(window, kernel, args.port ?? null),
      ctx,
    );
  },
});
