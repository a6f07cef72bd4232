// Live captures: the monitor's events that match a filter, for a duration, inline or as a background
// job (src/jobs.ts: get_capture_results fetches, stop_capture ends). Both run the same Capture below.
import { z } from "zod";
import { checkWindow, type Job, jobEnvelope, startJob } from "../jobs.ts";
import { completenessShape } from "./completeness.ts";
import { getMonitor } from "./monitor.ts";
import type { ConnectionEvent, EventType } from "./model.ts";
import { matchedCount } from "./query.ts";
import { eventMatches, eventViewSchema, viewOf, type EventFilter, type EventView } from "./view.ts";

/** Events kept per capture; the rest are counted. */
export const MAX_CAPTURE_EVENTS = 10_000;
/** The job kind of a background capture. */
export const CAPTURE_KIND = "get_live_network_events";

export const captureSchema = z.object({
  source: z.string().describe("ebpf, or ss-poll (sampled: see limits)"),
  limits: z.string().optional(),
  started_at: z.string(),
  duration_s: z.number(),
  done: z.boolean(),
  matched: z.number().describe("matching events, including those beyond max_events; connects, accepts and failed connects from the kernel's exact counts when it counts them (in ~1 s buckets)"),
  returned: z.number(),
  truncated: z.boolean(),
  hint: z.string().optional(),
  ...completenessShape,
  events: z.array(eventViewSchema),
  job_id: z.string().optional(),
});
export type CaptureResult = z.infer<typeof captureSchema>;

class Capture implements Job {
  readonly events: EventView[] = [];
  matched = 0;
  /** What was seen per type, for the totals (see result()). */
  private readonly seen = new Map<EventType, number>();
  done = false;
  readonly startedAt = Date.now();
  /** When it stopped (early or at its end): the end of its window. */
  private stoppedAt: number | null = null;
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
    this.finished = new Promise((resolve) => (this.finish = resolve));
    this.unsubscribe = monitor.subscribe((event) => this.offer(event));
    this.timer = setTimeout(() => this.stop(), durationS * 1000);
  }

  private offer(event: ConnectionEvent): void {
    if (this.done || !eventMatches(event, this.filter)) return;
    this.matched++;
    this.seen.set(event.type, (this.seen.get(event.type) ?? 0) + 1);
    if (this.events.length < this.maxEvents) this.events.push(viewOf(event));
    if (this.matched >= this.stopAfter) this.stop();
  }

  stop(): void {
    if (this.done) return;
    this.done = true;
    this.stoppedAt = Date.now();
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer) clearTimeout(this.timer);
    this.finish();
  }

  wait(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) this.stop();
    else signal?.addEventListener("abort", () => this.stop(), { once: true });
    return this.finished;
  }

  result(jobId?: string): CaptureResult {
    const monitor = getMonitor();
    const status = monitor.status();
    const endedAt = this.stoppedAt ?? Math.min(Date.now(), this.startedAt + this.durationS * 1000);
    // Connects, accepts and failed connects from the kernel's counts (exact when lines were lost;
    // in ~1 s buckets, so up to a second past the window's end may count), or what was seen where
    // that is more.
    let matched = this.matched;
    if (monitor.totalsExact) {
      monitor.sync();
      const filter = { pid: this.filter.pid, command: this.filter.command, port: this.filter.port, types: this.filter.types, remote_cidr: this.filter.destination };
      matched = matchedCount(monitor.store, { ...filter, sinceMs: this.startedAt, untilMs: endedAt }, (types) =>
        types.reduce((sum, type) => sum + (this.seen.get(type) ?? 0), 0),
      );
    }
    const truncated = matched > this.events.length;
    return {
      source: status.source,
      ...(status.limits ? { limits: status.limits } : {}),
      started_at: new Date(this.startedAt).toISOString(),
      // A late timer (a busy host) does not make the capture longer than asked.
      duration_s: Math.round((Math.min(endedAt, this.startedAt + this.durationS * 1000) - this.startedAt) / 100) / 10,
      done: this.done,
      matched,
      returned: this.events.length,
      truncated,
      ...(truncated ? { hint: `kept the first ${this.events.length} of ${matched} events: narrow with pid, command, port or type, or raise max_events` } : {}),
      ...monitor.completeness(this.startedAt, endedAt),
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
  checkWindow(options.durationS, false);
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

/** What get_capture_results and stop_capture return: a capture's own fields, or another tool's answer under `result`. */
export const jobResultSchema = captureSchema.partial().extend({ ...jobEnvelope, done: z.boolean() });
export type JobResult = z.infer<typeof jobResultSchema>;

export function jobAnswer(id: string, found: { kind: string; result: Record<string, unknown> }): JobResult {
  if (found.kind === CAPTURE_KIND) return { ...(found.result as CaptureResult), job_id: id, kind: found.kind };
  return { job_id: id, kind: found.kind, done: Boolean(found.result.done), result: found.result };
}

export function startCaptureJob(filter: EventFilter, options: { durationS: number; maxEvents: number }): CaptureResult {
  checkWindow(options.durationS, true);
  const { id, job } = startJob(CAPTURE_KIND, () => new Capture(filter, options.durationS, options.maxEvents));
  return { ...(job as Capture).result(), job_id: id };
}
