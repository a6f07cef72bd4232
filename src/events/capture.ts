// Live captures: the monitor's events that match a filter, for a duration, inline or as a background
// job. Gemini CLI cancels a tool call at 60 s, so inline captures stop at 55 s; longer ones are jobs
// (get_capture_results fetches, stop_capture ends). Both run the same capture() below.
import { z } from "zod";
import { ToolError } from "../errors.ts";
import { getMonitor } from "./monitor.ts";
import type { ConnectionEvent } from "./model.ts";
import { eventMatches, eventViewSchema, viewOf, type EventFilter, type EventView } from "./view.ts";

export const MAX_INLINE_SECONDS = 55;
export const MAX_JOB_SECONDS = 3_600;
/** Events kept per capture; the rest are counted. */
export const MAX_CAPTURE_EVENTS = 10_000;
export const MAX_RUNNING_JOBS = 4;
/** A finished job's results are kept this long for get_capture_results. */
const JOB_KEEP_MS = 60 * 60_000;

export const captureSchema = z.object({
  source: z.string().describe("ebpf, or ss-poll (sampled: see limits)"),
  limits: z.string().optional(),
  started_at: z.string(),
  duration_s: z.number(),
  done: z.boolean(),
  matched: z.number().describe("matching events seen, including those beyond max_events"),
  returned: z.number(),
  truncated: z.boolean(),
  hint: z.string().optional(),
  lost_events: z.number().describe("events the kernel dropped during the capture (ring buffer full); 0 means complete"),
  events: z.array(eventViewSchema),
  job_id: z.string().optional(),
});
export type CaptureResult = z.infer<typeof captureSchema>;

class Capture {
  readonly events: EventView[] = [];
  matched = 0;
  done = false;
  readonly startedAt = Date.now();
  private readonly lostAtStart: number;
  private unsubscribe: (() => void) | null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private finished!: Promise<void>;
  private finish!: () => void;

  constructor(
    private readonly filter: EventFilter,
    readonly durationS: number,
    readonly maxEvents: number,
    /** Stop as soon as this many events matched (wait_for_connection: 1). */
    private readonly stopAfter = Number.POSITIVE_INFINITY,
  ) {
    const monitor = getMonitor();
    this.lostAtStart = monitor.lostEvents;
    this.finished = new Promise((resolve) => (this.finish = resolve));
    this.unsubscribe = monitor.subscribe((event) => this.offer(event));
    this.timer = setTimeout(() => this.stop(), durationS * 1000);
  }

  private offer(event: ConnectionEvent): void {
    if (this.done || !eventMatches(event, this.filter)) return;
    this.matched++;
    if (this.events.length < this.maxEvents) this.events.push(viewOf(event));
    if (this.matched >= this.stopAfter) this.stop();
  }

  stop(): void {
    if (this.done) return;
    this.done = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer) clearTimeout(this.timer);
    this.finish();
  }

  wait(signal?: AbortSignal): Promise<void> {
    signal?.addEventListener("abort", () => this.stop(), { once: true });
    return this.finished;
  }

  result(jobId?: string): CaptureResult {
    const monitor = getMonitor();
    const status = monitor.status();
    const truncated = this.matched > this.events.length;
    return {
      source: status.source,
      ...(status.limits ? { limits: status.limits } : {}),
      started_at: new Date(this.startedAt).toISOString(),
      duration_s: Math.round((Math.min(Date.now(), this.startedAt + this.durationS * 1000) - this.startedAt) / 100) / 10,
      done: this.done,
      matched: this.matched,
      returned: this.events.length,
      truncated,
      ...(truncated ? { hint: `kept the first ${this.events.length} of ${this.matched} events: narrow with pid, command, port or type, or raise max_events` } : {}),
      lost_events: monitor.lostEvents - this.lostAtStart,
      events: this.events,
      ...(jobId ? { job_id: jobId } : {}),
    };
  }
}

/** An inline capture; `onProgress` is told every second (MCP progress notifications). */
export async function captureEvents(
  filter: EventFilter,
  options: { durationS: number; maxEvents: number; stopAfter?: number; signal?: AbortSignal; onProgress?: (elapsedS: number, matched: number) => void },
): Promise<CaptureResult> {
  if (options.durationS > MAX_INLINE_SECONDS) {
    throw new ToolError(`duration: ${options.durationS} s is longer than an inline capture may run (${MAX_INLINE_SECONDS} s, clients cancel calls at 60 s); pass background: true for a job`);
  }
  const capture = new Capture(filter, options.durationS, options.maxEvents, options.stopAfter);
  const progress = options.onProgress
    ? setInterval(() => options.onProgress!(Math.round((Date.now() - capture.startedAt) / 1000), capture.matched), 1_000)
    : null;
  try {
    await capture.wait(options.signal);
  } finally {
    if (progress) clearInterval(progress);
  }
  return capture.result();
}

const jobs = new Map<string, { capture: Capture; endedAt: number | null }>();
let nextJob = 1;

function sweepJobs(): void {
  for (const [id, job] of jobs) {
    if (job.capture.done && job.endedAt === null) job.endedAt = Date.now();
    if (job.endedAt !== null && Date.now() - job.endedAt > JOB_KEEP_MS) jobs.delete(id);
  }
}

export function startCaptureJob(filter: EventFilter, options: { durationS: number; maxEvents: number }): CaptureResult {
  sweepJobs();
  const running = [...jobs.values()].filter((job) => !job.capture.done).length;
  if (running >= MAX_RUNNING_JOBS) {
    throw new ToolError(`${running} capture jobs are already running (at most ${MAX_RUNNING_JOBS}): stop one with stop_capture, or wait for one to end`);
  }
  if (options.durationS > MAX_JOB_SECONDS) throw new ToolError(`duration: ${options.durationS} s is longer than a capture job may run (${MAX_JOB_SECONDS} s)`);
  const id = `cap-${nextJob++}-${Date.now().toString(36)}`;
  const capture = new Capture(filter, options.durationS, options.maxEvents);
  jobs.set(id, { capture, endedAt: null });
  return capture.result(id);
}

function findJob(id: string) {
  sweepJobs();
  const job = jobs.get(id);
  if (!job) {
    const known = [...jobs.keys()];
    throw new ToolError(`job_id: no capture job "${id}"${known.length ? `; known: ${known.join(", ")}` : ""} (finished jobs are kept for an hour)`);
  }
  return job;
}

export function captureJobResult(id: string): CaptureResult {
  return findJob(id).capture.result(id);
}

export function stopCaptureJob(id: string): CaptureResult {
  const job = findJob(id);
  job.capture.stop();
  return job.capture.result(id);
}

/** Ends every job (server shutdown). */
export function stopAllCaptures(): void {
  for (const job of jobs.values()) job.capture.stop();
}
