// Background jobs: long captures and probe windows that outlive the tool call that started them.
// Gemini CLI cancels a tool call at 60 s, so any tool with a longer window starts a job, returns its
// job_id at once, and the same two tools serve every kind: get_capture_results reads a job's results
// so far, stop_capture ends it. Finished jobs are kept an hour.
import { z } from "zod";
import { ToolError } from "./errors.ts";
import { limits } from "./limits.ts";

/** Longest a job may run. */
export const MAX_JOB_SECONDS = 3_600;
/** Longest an inline window may run: clients cancel calls at 60 s. */
export const MAX_INLINE_SECONDS = 55;
/** A finished job's results are kept this long. */
const JOB_KEEP_MS = 60 * 60_000;

export interface Job {
  readonly done: boolean;
  /** The results so far (the tool's own answer shape). */
  result(): Record<string, unknown>;
  /** Ends the job; results stay readable. */
  stop(): void | Promise<void>;
}

/** What get_capture_results and stop_capture return for a job that is not a live event capture. */
export const jobEnvelope = {
  job_id: z.string().optional(),
  kind: z.string().optional().describe("The tool that started the job"),
  result: z.record(z.string(), z.unknown()).optional().describe("For jobs of tools other than get_live_network_events: that tool's answer so far"),
};

const jobs = new Map<string, { kind: string; job: Job; endedAt: number | null }>();
let nextJob = 1;

function sweep(): void {
  for (const [id, entry] of jobs) {
    if (entry.job.done && entry.endedAt === null) entry.endedAt = Date.now();
    if (entry.endedAt !== null && Date.now() - entry.endedAt > JOB_KEEP_MS) jobs.delete(id);
  }
}

/** Checks the window of an inline call or a job against its limits (ToolError naming the value). */
export function checkWindow(durationS: number, background: boolean): void {
  if (!background && durationS > MAX_INLINE_SECONDS) {
    throw new ToolError(`duration: ${durationS} s is longer than an inline call may run (${MAX_INLINE_SECONDS} s, clients cancel calls at 60 s); pass background: true for a job`);
  }
  if (durationS > MAX_JOB_SECONDS) throw new ToolError(`duration: ${durationS} s is longer than a job may run (${MAX_JOB_SECONDS} s)`);
}

/** Starts a job made by `make` (called only when there is room) and returns its id. */
export function startJob(kind: string, make: () => Job): { id: string; job: Job } {
  sweep();
  const running = [...jobs.values()].filter((entry) => !entry.job.done).length;
  if (running >= limits.maxJobs) {
    throw new ToolError(`${running} background jobs are already running (at most ${limits.maxJobs}, --max-jobs): stop one with stop_capture, or wait for one to end`);
  }
  const id = `job-${nextJob++}-${Date.now().toString(36)}`;
  const job = make();
  jobs.set(id, { kind, job, endedAt: null });
  return { id, job };
}

function find(id: string) {
  sweep();
  const entry = jobs.get(id);
  if (!entry) {
    const known = [...jobs.keys()];
    throw new ToolError(`job_id: no job "${id}"${known.length ? `; known: ${known.join(", ")}` : ""} (finished jobs are kept for an hour)`);
  }
  return entry;
}

export function jobResult(id: string): { kind: string; result: Record<string, unknown> } {
  const entry = find(id);
  return { kind: entry.kind, result: entry.job.result() };
}

export async function stopJob(id: string): Promise<{ kind: string; result: Record<string, unknown> }> {
  const entry = find(id);
  await entry.job.stop();
  return { kind: entry.kind, result: entry.job.result() };
}

/** Ends every job (server shutdown). */
export async function stopAllJobs(): Promise<void> {
  await Promise.all([...jobs.values()].map((entry) => entry.job.stop()));
}
