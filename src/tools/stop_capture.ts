import { z } from "zod";
import { captureSchema, stopCaptureJob } from "../events/capture.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "stop_capture",
  title: "Stop a capture job",
  description: "Ends a background capture now and returns everything it gathered. Stopping a finished job just returns its results.",
  toolset: "events",
  input: { job_id: z.string().min(1).describe("The job_id get_live_network_events returned") },
  output: captureSchema.shape,
  // Ends ipcscope's own job and nothing on the host: read-only for the host, so --read-only keeps it.
  annotations: READ_ONLY,
  handler: async (args) => stopCaptureJob(args.job_id),
});
