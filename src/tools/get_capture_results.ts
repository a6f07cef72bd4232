import { z } from "zod";
import { captureJobResult, captureSchema } from "../events/capture.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "get_capture_results",
  title: "Capture job results",
  description: "The events a background capture (get_live_network_events with background=true) has gathered so far; done=true once it ended.",
  toolset: "events",
  input: { job_id: z.string().min(1).describe("The job_id get_live_network_events returned") },
  output: captureSchema.shape,
  annotations: READ_ONLY,
  handler: async (args) => captureJobResult(args.job_id),
});
