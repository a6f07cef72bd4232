import { existsSync } from "node:fs";
import { z } from "zod";
import { ToolError } from "../errors.ts";
import { COMM_MAX, SYSCALL_ERRORS_PROBE, syscallErrorsAnswer, syscallErrorsSchema } from "../health/syscalls.ts";
import { runWindow } from "../health/window.ts";
import { MAX_INLINE_SECONDS, MAX_JOB_SECONDS } from "../jobs.ts";
import { showValue } from "../util/zod-errors.ts";
import { defineTool, READ_ONLY } from "./types.ts";

export default defineTool({
  name: "trace_syscall_errors",
  title: "Failed system calls",
  description:
    "System calls that fail, over `duration` seconds, counted in the kernel (eBPF, raw_syscalls:sys_exit) per " +
    "process, syscall and errno: which process gets ENOENT from openat, ECONNREFUSED from connect, EACCES, " +
    "EAGAIN... with counts and rates, plus totals per syscall and per errno. Filter by pid or by command: the " +
    `kernel's name of the program (comm), at most ${COMM_MAX} characters, matched exactly (a longer program name ` +
    `is cut to its first ${COMM_MAX}). While it runs, every syscall on the host costs ~0.2 us more. ` +
    `Inline at most ${MAX_INLINE_SECONDS} s; background=true returns a job_id (get_capture_results, stop_capture).`,
  toolset: "health",
  input: {
    duration: z.number().positive({ error: (issue) => `must be more than 0 seconds, got ${showValue(issue.input)}` }).max(MAX_JOB_SECONDS).default(5).describe(`Seconds to count (inline at most ${MAX_INLINE_SECONDS})`),
    pid: z.number().int().positive().optional().describe("Count only this process (its threads included)"),
    command: z
      .string()
      .min(1)
      .max(COMM_MAX, {
        error: (issue) =>
          `must have at most ${COMM_MAX} characters, got ${showValue(issue.input)}: the kernel keeps only the first ${COMM_MAX} characters of a program's name (comm), so pass those`,
      })
      .optional()
      .describe(`Count only processes with this exact command name (comm, at most ${COMM_MAX} characters)`),
    limit: z.number().int().positive().max(1000).default(50).describe("Most rows to return"),
    background: z.boolean().default(false).describe("Run as a background job and return its job_id at once"),
  },
  output: syscallErrorsSchema.shape,
  annotations: READ_ONLY,
  handler: async (args, ctx) => {
    if (args.pid !== undefined && !existsSync(`/proc/${args.pid}`)) {
      throw new ToolError(`pid: no process ${args.pid} is running; to catch a program that is not started yet, filter by command`);
    }
    const filter = { pid: args.pid ?? null, command: args.command ?? null };
    return runWindow(
      "trace_syscall_errors",
      // The probe needs both parameters: 0 and "" mean no filter.
      { probe: SYSCALL_ERRORS_PROBE, args: [String(args.pid ?? 0), args.command ?? ""], durationS: args.duration, background: args.background },
      (window) => syscallErrorsAnswer(window, filter, args.limit),
      ctx,
    );
  },
});
