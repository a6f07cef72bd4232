import { z } from "zod";
import { jobAnswer, jobResultSchema } from "../events/capture.ts";
import { stopJob } from "../jobs.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "stop_capture",
  title: "Stop a background job",
  description: "Ends a background job (a capture or a probe window) now and returns everything it gathered. Stopping a finished job just returns its results.",
  toolset: "events",
  input: { job_id: z.string().min(1).describe("The job_id the tool returned") },
  output: jobResultSchema.shape,
  // Ends ipcscope's own job and nothing on the host: read-only for the host, so --read-only keeps it.
  annotations: READ_ONLY,
  handler: async (args) => jobAnswer(args.job_id, await stopJob(args.job_id)),
});
