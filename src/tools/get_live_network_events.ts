import { z } from "zod";
import { captureEvents, captureSchema, MAX_CAPTURE_EVENTS, startCaptureJob } from "../events/capture.ts";
import { MAX_INLINE_SECONDS, MAX_JOB_SECONDS } from "../jobs.ts";
import { eventFilterInput, filterOf } from "../events/view.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "get_live_network_events",
  title: "Live network events",
  description:
    "Connection events as they happen, for `duration` seconds: TCP connections made (with connect latency), " +
    "accepted, failed (refused, timed out) and closed (duration, bytes), UDP and Unix connect() calls with their " +
    "return code, new listeners, and process exec/exit, each with pid and command. From eBPF tracepoints when " +
    `possible, else sampled from ss (the answer says which). Inline captures run at most ${MAX_INLINE_SECONDS} s; ` +
    "background=true returns a job_id at once (fetch with get_capture_results, end with stop_capture). " +
    "For what already happened, use list_connections.",
  toolset: "events",
  input: {
    duration: z.number().positive().max(MAX_JOB_SECONDS).default(10).describe(`Seconds to capture (inline at most ${MAX_INLINE_SECONDS})`),
    ...eventFilterInput,
    max_events: z.number().int().positive().max(MAX_CAPTURE_EVENTS).default(200).describe("Most events to keep; the rest are counted"),
    background: z.boolean().default(false).describe("Run as a background job and return its job_id at once"),
  },
  output: captureSchema.shape,
  annotations: READ_ONLY,
  handler: async (args, ctx) => {
    const filter = filterOf(args);
    if (args.background) return startCaptureJob(filter, { durationS: args.duration, maxEvents: args.max_events });
    return captureEvents(filter, {
      durationS: args.duration,
      maxEvents: args.max_events,
      signal: ctx.signal,
      onProgress: ctx.progress ? (elapsed, matched) => ctx.progress!(elapsed, args.duration, `${matched} matching event(s) so far`) : undefined,
    });
  },
});
