// A probe window: one embedded probe run for N seconds under the probe supervisor, its in-kernel
// aggregations (bpftrace maps, printed as JSON every second and at the end) summed, and its sampled
// lines kept up to a cap. Every health tool that needs eBPF runs through runWindow(): inline for up
// to 55 s with progress, or as a background job read with get_capture_results / stop_capture.
import { z } from "zod";
import { ToolError } from "../errors.ts";
import { checkWindow, type Job, startJob } from "../jobs.ts";
import { takeProbeSlot } from "../limits.ts";
import { findProbe } from "../probes/catalog.ts";
import { type ProbeGap, ProbeSupervisor } from "../probes/supervisor.ts";
import type { ToolContext } from "../tools/types.ts";

/** bpftrace compiles before it attaches: a few seconds, more on a busy small machine. */
const READY_TIMEOUT_MS = 30_000;

/** A map as `bpftrace -f json` prints it: a number (no key), or key → number ("k1,k2" for several keys). */
export const mapLineSchema = z.object({
  type: z.literal("map"),
  name: z.string(),
  data: z.union([z.number(), z.record(z.string(), z.number())]),
});

/** The fields every window answer carries, beside the tool's own. */
export const windowFields = {
  source: z.string().describe("Where the figures come from: the probe and its tracepoints"),
  started_at: z.string().nullable().describe("When the probe was attached (null: not yet)"),
  duration_s: z.number().describe("Seconds the probe was attached, so far"),
  done: z.boolean(),
  lost_events: z.number().describe("Lines the kernel's ring buffer dropped; the in-kernel counts are complete regardless"),
  probe_restarts: z.number(),
  gaps: z.array(z.object({ from: z.string(), to: z.string().nullable(), reason: z.string() })).describe("Times the probe was down during the window"),
  error: z.string().optional().describe("Why the probe could not run (a background job that failed to start)"),
  job_id: z.string().optional(),
};
export type WindowFields = z.infer<z.ZodObject<typeof windowFields>>;

export interface WindowOptions<S> {
  probe: string;
  /** The script's positional parameters ($1, ...). */
  args?: string[];
  durationS: number;
  /** Lines besides maps (samples of single events), checked per line; none when absent. */
  sample?: z.ZodType<S>;
  maxSamples?: number;
  /** Told after each map print (about every second): e.g. to name sockets while they still exist. */
  onMap?: (name: string, counts: Map<string, number>) => void;
  /** Instead of bpftrace (tests: a program that prints what `bpftrace -f json` would). */
  command?: (scriptPath: string, args: string[], json: boolean) => string[];
  /** Adapts the script to this kernel before it runs (e.g. a tracepoint field older kernels lack). */
  rewrite?: (source: string) => string;
}

export class ProbeWindow<S extends { type: string } = { type: string }> {
  /** Per map: key → count, summed over the runs that ended (a restarted probe starts from zero). */
  private readonly finished = new Map<string, Map<string, number>>();
  private current = new Map<string, Map<string, number>>();
  readonly samples: S[] = [];
  samplesSeen = 0;
  done = false;
  private readyAt: number | null = null;
  private endedAt: number | null = null;
  private readonly gaps: ProbeGap[] = [];
  private readonly supervisor: ProbeSupervisor<S | z.infer<typeof mapLineSchema>>;
  private failure: string | null = null;
  private readySignal!: { resolve: () => void; reject: (error: Error) => void };
  private readonly readyPromise: Promise<void>;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopping: Promise<void> | null = null;
  private readonly ended: Promise<void>;
  private end!: () => void;

  constructor(private readonly options: WindowOptions<S>) {
    const found = findProbe(options.probe);
    if (!found) throw new Error(`no embedded probe ${options.probe}`);
    const probe = options.rewrite ? { ...found, source: options.rewrite(found.source) } : found;
    this.readyPromise = new Promise((resolve, reject) => (this.readySignal = { resolve, reject }));
    this.readyPromise.catch(() => {});
    this.ended = new Promise((resolve) => (this.end = resolve));
    const schema = options.sample ? z.union([mapLineSchema, options.sample]) : mapLineSchema;
    this.supervisor = new ProbeSupervisor({
      probe,
      args: options.args,
      command: options.command,
      // A probe that dies mid-window is back after its compile time plus this: the gap stays short.
      initialBackoffMs: 200,
      schema: schema as z.ZodType<S | z.infer<typeof mapLineSchema>>,
      // A probe that never gets going is not retried: the caller waits for an answer.
      maxFailedStarts: 1,
      onEvent: (line) => this.line(line),
      onReady: () => this.ready(),
      onGap: (gap) => {
        if (gap.to_ms === null) {
          this.gaps.push(gap);
          this.foldRun();
        }
      },
      onFailed: (error) => {
        this.failure = error;
        this.readySignal.reject(new ToolError(`probe ${options.probe} could not run: ${error}`));
        void this.stop();
      },
    });
  }

  get source(): string {
    return `ebpf: probe ${this.options.probe} (${findProbe(this.options.probe)!.tracepoints.join(", ")})`;
  }

  /** Starts the probe; resolves once it is attached (the window's clock starts then). */
  async start(): Promise<void> {
    this.supervisor.start();
    const timeout = setTimeout(
      () => this.readySignal.reject(new ToolError(`probe ${this.options.probe} did not attach within ${READY_TIMEOUT_MS / 1000} s (${this.supervisor.status().last_error ?? "bpftrace still compiling?"})`)),
      READY_TIMEOUT_MS,
    );
    try {
      await this.readyPromise;
    } catch (error) {
      this.failure ??= error instanceof Error ? error.message : String(error);
      await this.stop();
      throw error;
    } finally {
      clearTimeout(timeout);
    }
  }

  private ready(): void {
    if (this.readyAt !== null) return;
    this.readyAt = Date.now();
    this.readySignal.resolve();
    this.timer = setTimeout(() => void this.stop(), this.options.durationS * 1000);
  }

  private line(line: S | z.infer<typeof mapLineSchema>): void {
    if (line.type === "map") {
      const { name, data } = line as z.infer<typeof mapLineSchema>;
      // Maps are cumulative within a run: the latest print replaces the one before.
      const counts = typeof data === "number" ? new Map([["", data]]) : new Map(Object.entries(data));
      this.current.set(name, counts);
      this.options.onMap?.(name, counts);
      return;
    }
    this.samplesSeen++;
    if (this.samples.length < (this.options.maxSamples ?? 0)) this.samples.push(line as S);
  }

  /** A run ended (the probe died): its last counts join the finished ones. */
  private foldRun(): void {
    for (const [name, counts] of this.current) {
      const total = this.finished.get(name) ?? new Map<string, number>();
      for (const [key, count] of counts) total.set(key, (total.get(key) ?? 0) + count);
      this.finished.set(name, total);
    }
    this.current = new Map();
  }

  /** Wall time (ms) of a probe timestamp (ts_ns of a sample). */
  wallTime(tsNs: number): number {
    return this.supervisor.wallTime(tsNs);
  }

  /** Key → count of one map over the whole window. */
  counts(name: string): Map<string, number> {
    const total = new Map(this.finished.get(name) ?? []);
    for (const [key, count] of this.current.get(name) ?? []) total.set(key, (total.get(key) ?? 0) + count);
    return total;
  }

  /** Resolves when the window has ended and its probe has exited. */
  whenEnded(): Promise<void> {
    return this.ended;
  }

  /** Waits for the end of the window (or an abort, which ends it early). */
  async wait(signal?: AbortSignal, progress?: ToolContext["progress"]): Promise<void> {
    // A signal that fired before (while bpftrace compiled) never fires again: check it first.
    if (signal?.aborted) void this.stop();
    else signal?.addEventListener("abort", () => void this.stop(), { once: true });
    const ticker = progress
      ? setInterval(() => progress(Math.min(this.elapsedS(), this.options.durationS), this.options.durationS, `${this.options.probe} attached`), 1_000)
      : null;
    try {
      await this.ended;
    } finally {
      if (ticker) clearInterval(ticker);
    }
  }

  /** Ends the window: the probe prints its final maps in END and they are read before this resolves. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.timer) clearTimeout(this.timer);
      // Stopped (cancelled, stop_capture) while bpftrace was still compiling: start() gives up now.
      if (this.readyAt === null) this.readySignal.reject(new ToolError(`probe ${this.options.probe} was stopped before it attached`));
      this.endedAt = Date.now();
      await this.supervisor.stop();
      this.done = true;
      this.end();
    })();
    return this.stopping;
  }

  private elapsedS(): number {
    if (this.readyAt === null) return 0;
    return Math.round(((this.endedAt ?? Date.now()) - this.readyAt) / 100) / 10;
  }

  fields(): WindowFields {
    const status = this.supervisor.status();
    return {
      source: this.source,
      started_at: this.readyAt === null ? null : new Date(this.readyAt).toISOString(),
      duration_s: this.elapsedS(),
      done: this.done,
      lost_events: status.lost_events,
      probe_restarts: status.restarts,
      gaps: this.gaps.map((gap) => ({ from: new Date(gap.from_ms).toISOString(), to: gap.to_ms === null ? null : new Date(gap.to_ms).toISOString(), reason: gap.reason })),
      ...(this.failure ? { error: this.failure } : {}),
    };
  }
}

/**
 * Runs a probe window for a tool: inline (waits, with progress, and returns `summarize(window)`) or,
 * with `background`, as a job whose results get_capture_results reads. `summarize` builds the
 * tool's answer from the window at any moment, so a job's partial results have the same shape.
 */
export async function runWindow<S extends { type: string }, R extends Record<string, unknown>>(
  tool: string,
  options: WindowOptions<S> & { background: boolean },
  summarize: (window: ProbeWindow<S>) => R,
  ctx: Pick<ToolContext, "signal" | "progress">,
): Promise<R> {
  checkWindow(options.durationS, options.background);
  const release = takeProbeSlot(options.probe);
  let window: ProbeWindow<S>;
  try {
    window = new ProbeWindow<S>(options);
  } catch (error) {
    release();
    throw error;
  }
  void window.whenEnded().then(release);
  if (options.background) {
    const job: Job = {
      get done() {
        return window.done;
      },
      result: () => summarize(window),
      stop: () => window.stop(),
    };
    let id: string;
    try {
      ({ id } = startJob(tool, () => job));
    } catch (error) {
      release();
      throw error;
    }
    // A job that cannot start says so in its results (done, with error); the caller has its id already.
    window.start().catch(() => {});
    return { ...summarize(window), job_id: id };
  }
  // Cancelled while bpftrace compiles: the window stops, and start() says so.
  const stop = () => void window.stop();
  ctx.signal.addEventListener("abort", stop, { once: true });
  try {
    await window.start();
  } finally {
    ctx.signal.removeEventListener("abort", stop);
  }
  await window.wait(ctx.signal, ctx.progress);
  return summarize(window);
}
