import { z } from "zod";
import { captureEvents } from "../events/capture.ts";
import { completenessShape } from "../events/completeness.ts";
import { MAX_INLINE_SECONDS } from "../jobs.ts";
import { eventViewSchema, filterOf, eventFilterInput } from "../events/view.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "wait_for_connection",
  title: "Wait for a connection",
  description:
    "Blocks until the next matching connection event happens (by default a connection made, accepted or failed) and " +
    `returns it, or returns found=false after timeout seconds (at most ${MAX_INLINE_SECONDS}). Filters: pid, command, ` +
    "port, destination (an IP or CIDR), type.",
  toolset: "events",
  input: {
    ...eventFilterInput,
    destination: z.string().min(1).optional().describe("Only connections to this IP or CIDR block"),
    timeout: z.number().positive().max(MAX_INLINE_SECONDS).default(30).describe("Seconds to wait"),
  },
  output: {
    found: z.boolean(),
    waited_s: z.number(),
    source: z.string(),
    ...completenessShape,
    event: eventViewSchema.optional(),
  },
  annotations: READ_ONLY,
  handler: async (args, ctx) => {
    const filter = filterOf(args);
    filter.types ??= ["connect", "accept", "connect_failed"];
    const started = Date.now();
    const result = await captureEvents(filter, { durationS: args.timeout, maxEvents: 1, stopAfter: 1, signal: ctx.signal });
    return {
      found: result.events.length > 0,
      waited_s: Math.round((Date.now() - started) / 100) / 10,
      source: result.source,
      lost_events: result.lost_events,
      complete: result.complete,
      ...(result.note !== undefined ? { note: result.note } : {}),
      ...(result.events[0] ? { event: result.events[0] } : {}),
    };
  },
});
