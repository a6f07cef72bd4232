// The background monitor: from server start it keeps connection events in the store, from the
// eBPF connection tracker when it can run here, else from ss polling. Live tools subscribe to it
// (it tells them each event as it arrives, before the store writes it); history tools query its
// store. One per process.
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { logger } from "../logger.ts";
import { findProbe } from "../probes/catalog.ts";
import { ProbeSupervisor, type ProbeStatus } from "../probes/supervisor.ts";
import { registerBackground } from "../server/health.ts";
import { CompletenessLog, type Completeness } from "./completeness.ts";
import { DRAIN_MS, KernelCounts } from "./counts.ts";
import type { ConnectionEvent, EventSource } from "./model.ts";
import { Lines, type ProbeLine, probeLineSchema } from "./probe-lines.ts";
import { POLL_LIMITS, SsPoller } from "./poll.ts";
import { DEFAULT_MAX_AGE_MS, EventStore } from "./store.ts";

export const CONNECTION_PROBE = "trace_connections";

/**
 * Sizes for the connection tracker's bpftrace, from the number of CPUs. Its per-socket maps hold
 * one entry per connection being set up or open (bpftrace's default of 4096 keys would drop the
 * ones beyond), and its queue 2048 lines per CPU: 65536 keys, or 2048 x CPUs above 32 CPUs. Its
 * ring buffer gets headroom for the reader being descheduled under load: 64 MiB in all, at most
 * 4 MiB (1024 pages) and at least 256 KiB per CPU. bench/events lost events with 1 MiB per CPU
 * when this machine's other vCPU stalled (~125 ms of a 10k connections/s storm).
 */
export function probeEnv(cpus = navigator.hardwareConcurrency || 1, env: Record<string, string | undefined> = process.env): Record<string, string> {
  const pages = 2 ** Math.floor(Math.log2(Math.max(64, Math.min(1024, 16_384 / cpus))));
  // For the tests only: a small ring buffer that a storm overruns, to show that totals survive.
  const testPages = env.IPCSCOPE_TEST_PERF_RB_PAGES;
  return { BPFTRACE_MAP_KEYS_MAX: String(Math.max(65_536, 2_048 * cpus)), BPFTRACE_PERF_RB_PAGES: testPages && /^\d+$/.test(testPages) ? testPages : String(pages) };
}

export interface MonitorOptions {
  /** A directory for the event history file (events.db); in memory when absent. */
  stateDir?: string;
  /** auto: eBPF when it can run here, else ss polling; ebpf: only eBPF (no fallback); ss-poll: never load a probe. */
  source?: "auto" | "ebpf" | "ss-poll";
}

export type MonitorStatus = {
  source: EventSource | "none";
  limits: string | null;
  probe: ProbeStatus | null;
  poll: { running: boolean; polls: number; interval_ms: number; last_error: string | null } | null;
  store: ReturnType<EventStore["stats"]>;
  /** Where the totals come from: the kernel's counts (exact), or counted from the events (a sample when lines are lost). */
  totals: "kernel" | "events";
  /** Why the kernel's counts are not read, when they are not. */
  totals_error: string | null;
};

type Listener = (event: ConnectionEvent) => void;

export class Monitor {
  readonly store: EventStore;
  private readonly listeners = new Set<Listener>();
  /** Lost lines and probe gaps, kept as long as the store keeps events. */
  private readonly losses = new CompletenessLog({ keepMs: DEFAULT_MAX_AGE_MS });
  private supervisor: ProbeSupervisor<ProbeLine> | null = null;
  private poller: SsPoller | null = null;
  private started = false;
  private unregister: (() => void) | null = null;
  /** The running probe's counts, read every DRAIN_MS; null while none can be read. */
  private counts: KernelCounts | null = null;
  private countsTimer: ReturnType<typeof setInterval> | null = null;
  private countsError: string | null = null;

  constructor(private readonly options: MonitorOptions = {}) {
    let path: string | undefined;
    if (options.stateDir) {
      mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
      path = join(options.stateDir, "events.db");
    }
    this.store = new EventStore({ path });
  }

  get source(): EventSource | "none" {
    if (this.supervisor && this.supervisor.status().state !== "failed") return "ebpf";
    if (this.poller?.running) return "ss-poll";
    return "none";
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.unregister = registerBackground("monitor", () => this.status());
    const probe = findProbe(CONNECTION_PROBE);
    const source = this.options.source ?? "auto";
    if (source === "ss-poll" || !probe) {
      this.startPolling(source === "ss-poll" ? "--events-source ss-poll" : `probe ${CONNECTION_PROBE} is not in this build`);
      return;
    }
    const lines = new Lines((tsNs) => this.supervisor!.wallTime(tsNs));
    this.supervisor = new ProbeSupervisor<ProbeLine>({
      probe,
      schema: probeLineSchema,
      env: probeEnv(),
      onEvent: (line) => {
        for (const event of lines.events(line)) this.add(event);
      },
      onReady: () => {
        lines.reset();
        this.startCounting();
      },
      onLost: (count, atMs) => this.losses.lost(count, atMs),
      onGap: (gap) => {
        this.losses.gap(gap);
        // The probe died: its maps (and the counts not yet read) went with it.
        if (gap.to_ms === null) this.stopCounting(false);
      },
      onFailed: (error) => {
        if (source === "auto") this.startPolling(error);
        else logger.error(`connection events are off: ${error} (--events-source ebpf: no fallback to ss polling)`);
      },
    });
    this.supervisor.start();
  }

  /**
   * Reads the probe's counts from its maps every DRAIN_MS into the store, which then counts no
   * event itself. Where they cannot be read (no CAP_SYS_ADMIN, no FFI), the store counts the
   * events, and the answers say their totals are not exact.
   */
  private startCounting(): void {
    this.stopCounting(false);
    // From now on the kernel counts: the events must not, or an outcome would count twice.
    this.store.countEvents = false;
    const supervisor = this.supervisor!;
    const drain = (all = false) => {
      try {
        if (!this.counts) {
          const pid = supervisor.status().pid;
          if (pid === null) return; // the wrapper has not said the probe's pid yet
          const counts = new KernelCounts(pid, { probeNs: () => supervisor.probeNs(), wallMs: (tsNs) => supervisor.wallTime(tsNs) });
          counts.open();
          this.counts = counts;
          this.countsError = null;
        }
        this.store.addCounts(this.counts.drain(all));
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (this.countsError === null) logger.warn(`connection totals are counted from the event lines, not exactly in the kernel: ${message}`);
        this.countsError = message;
        this.stopCounting(false);
      }
    };
    this.drainCounts = drain;
    this.countsTimer = setInterval(drain, DRAIN_MS);
    this.countsTimer.unref?.();
    drain();
  }

  private drainCounts: ((all?: boolean) => void) | null = null;

  /** Stops reading the counts (after a last read of every epoch with `final`); the store counts events again. */
  private stopCounting(final: boolean): void {
    if (final && this.counts) this.drainCounts?.(true);
    if (this.countsTimer) clearInterval(this.countsTimer);
    this.countsTimer = null;
    this.counts?.close();
    this.counts = null;
    this.drainCounts = null;
    this.store.countEvents = true;
  }

  /** Makes the history current for a query: the counts up to now read from the kernel, then every buffered row written. */
  sync(): void {
    this.drainCounts?.();
    this.store.flush();
  }

  /** Whether the totals now come from the kernel's exact counts. */
  get totalsExact(): boolean {
    return this.counts !== null;
  }

  private startPolling(why: string): void {
    logger.warn(`connection events come from ss polling (${why}): ${POLL_LIMITS}`);
    this.poller ??= new SsPoller((event) => this.add(event));
    this.poller.start();
  }

  /** Resolves once the source delivers complete events (the probe said ready), or false after timeoutMs. */
  async ready(timeoutMs = 15_000): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (this.supervisor?.running) return true;
      if (this.poller?.running && this.poller.polls > 0) return true;
      // Started, yet no source: the probe was given up with no fallback (--events-source ebpf).
      if (this.started && this.source === "none") return false;
      await Bun.sleep(50);
    }
    return false;
  }

  /** A live event: tells the subscribers now, then buffers it in the store (written at its next flush). */
  add(event: ConnectionEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        // One broken live tool must not stop the history or the other listeners.
        logger.warn("event store: a subscriber failed:", error);
      }
    }
    this.store.add(event);
  }

  /** Called synchronously for every added event (before it is written); returns the unsubscribe. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  status(): MonitorStatus {
    const probe = this.supervisor?.status() ?? null;
    return {
      source: this.source,
      limits: this.source === "ss-poll" ? POLL_LIMITS : null,
      probe,
      poll: this.poller
        ? { running: this.poller.running, polls: this.poller.polls, interval_ms: Math.round(this.poller.intervalMs), last_error: this.poller.lastError }
        : null,
      store: this.store.stats(),
      totals: this.counts ? "kernel" : "events",
      totals_error: this.countsError,
    };
  }

  /** How complete the events of [sinceMs, untilMs] are; their totals are exact while they come from the kernel's counts. */
  completeness(sinceMs: number, untilMs: number, totalsExact = this.totalsExact): Completeness {
    return this.losses.window(sinceMs, untilMs, { source: this.source, totalsExact, pollIntervalMs: this.poller?.intervalMs });
  }

  async stop(): Promise<void> {
    this.poller?.stop();
    // The maps go with the probe: what they counted since the last read is read first.
    this.stopCounting(true);
    await this.supervisor?.stop();
    this.store.flush();
    this.unregister?.();
    this.started = false;
  }

  /** Closes the store; the subscribers hear no more (an add after this throws, as the store's does). */
  close(): void {
    this.listeners.clear();
    this.store.close();
  }
}

let shared: Monitor | null = null;
let sharedOptions: MonitorOptions = {};

/** Set before the first use (serve does, from --state-dir). */
export function configureMonitor(options: MonitorOptions): void {
  sharedOptions = options;
}

/** The process's monitor, started on first use (serve starts it at once unless --no-monitor). */
export function getMonitor(): Monitor {
  if (!shared) shared = new Monitor(sharedOptions);
  shared.start();
  return shared;
}

/** The monitor's status if one runs, without starting one (get_system_info). */
export function peekMonitor(): MonitorStatus | null {
  return shared?.status() ?? null;
}

/** Stops the monitor if one was started: the probe ends, the store is flushed and closed. */
export async function stopMonitor(): Promise<void> {
  if (!shared) return;
  const monitor = shared;
  shared = null;
  await monitor.stop();
  monitor.close();
}
