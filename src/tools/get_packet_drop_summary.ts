import { z } from "zod";
import { SocketOwners } from "../health/kernel.ts";
import { DROPS_PROBE, dropInodes, dropKernel, dropSampleSchema, dropSummary, dropSummarySchema, rewriteForKernel } from "../health/drops.ts";
import { runWindow } from "../health/window.ts";
import { MAX_INLINE_SECONDS, MAX_JOB_SECONDS } from "../jobs.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "get_packet_drop_summary",
  title: "Packet drop summary",
  description:
    "Packets the kernel dropped over `duration` seconds, counted in the kernel (eBPF, skb:kfree_skb) and grouped by " +
    "drop reason (NETFILTER_DROP, NO_SOCKET, TCP_CSUM, ... on kernels 5.17+), interface, TCP/UDP destination port " +
    "and the process holding the packet's socket. Normal frees are not counted. Use it when connections fail or " +
    `stall. Inline at most ${MAX_INLINE_SECONDS} s; background=true returns a job_id (get_capture_results, stop_capture). ` +
    "Individual drops: list_packet_drops.",
  toolset: "health",
  input: {
    duration: z.number().positive().max(MAX_JOB_SECONDS).default(5).describe(`Seconds to count (inline at most ${MAX_INLINE_SECONDS})`),
    port: z.number().int().min(1).max(65535).optional().describe("Count only TCP/UDP packets to this destination port"),
    limit: z.number().int().positive().max(1000).default(50).describe("Most rows to return"),
    background: z.boolean().default(false).describe("Run as a background job and return its job_id at once"),
  },
  output: dropSummarySchema.shape,
  annotations: READ_ONLY,
  handler: async (args, ctx) => {
    const kernel = dropKernel();
    // Sockets are named as they show up, while their processes still hold them.
    const owners = new SocketOwners();
    return runWindow(
      "get_packet_drop_summary",
      { probe: DROPS_PROBE, args: [String(args.port ?? 0)], durationS: args.duration, sample: dropSampleSchema, maxSamples: 0, rewrite: rewriteForKernel(kernel), background: args.background,
        onMap: (name, counts) => name === "@drops" && owners.resolve(dropInodes(counts)) },
      (window) => dropSummary(window, kernel, args.port ?? null, args.limit, owners),
      ctx,
    );
  },
});
