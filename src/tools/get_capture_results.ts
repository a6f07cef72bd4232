import { z } from "zod";
import { jobAnswer, jobResultSchema } from "../events/capture.ts";
import { jobResult } from "../jobs.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "get_capture_results",
  title: "Background job results",
  description:
    "What a background job (any tool called with background=true: live event captures, packet drops, TCP health, " +
    "syscall errors) has gathered so far; done=true once it ended. Event captures answer with their events; other " +
    "jobs with that tool's answer under `result`.",
  toolset: "events",
  input: { job_id: z.string().min(1).describe("The job_id the tool returned") },
  output: jobResultSchema.shape,
  annotations: READ_ONLY,
  handler: async (args) => jobAnswer(args.job_id, jobResult(args.job_id)),
});
