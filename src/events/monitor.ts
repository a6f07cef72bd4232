// The background monitor: from server start it keeps connection events in the store, from the
// eBPF connection tracker when it can run here, else from ss polling. Live tools subscribe to it
// (it tells them each event as it arrives, before the store writes it); history tools query its
// store. One per process.
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { z } from "zod";
import { logger } from "../logger.ts";
import { findProbe } from "../probes/catalog.ts";
import { ProbeSupervisor, type ProbeStatus } from "../probes/supervisor.ts";
import { registerBackground } from "../server/health.ts";
import { errnoName } from "../util/errno.ts";
import { CompletenessLog, type Completeness } from "./completeness.ts";
import { makeEvent, type ConnectionEvent, type EventSource } from "./model.ts";
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
export function probeEnv(cpus = navigator.hardwareConcurrency || 1): Record<string, string> {
  const pages = 2 ** Math.floor(Math.log2(Math.max(64, Math.min(1024, 16_384 / cpus))));
  return { BPFTRACE_MAP_KEYS_MAX: String(Math.max(65_536, 2_048 * cpus)), BPFTRACE_PERF_RB_PAGES: String(pages) };
}

const family = z.union([z.literal(4), z.literal(6), z.literal(1)]).transform((f) => (f === 4 ? "ipv4" : f === 6 ? "ipv6" : "unix") as "ipv4" | "ipv6" | "unix");
const who = { ts_ns: z.number(), pid: z.number(), uid: z.number(), comm: z.string() };
const inet = { family, laddr: z.string(), lport: z.number(), raddr: z.string(), rport: z.number() };

/** The lines trace_connections.bt prints (see its header), besides ready and heartbeat. */
export const probeLineSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("listen"), ...who, family, laddr: z.string(), lport: z.number() }),
  z.object({
    type: z.literal("connect"),
    ...who,
    proto: z.enum(["tcp", "udp", "unix"]),
    family,
    laddr: z.string().optional(),
    lport: z.number().optional(),
    raddr: z.string().optional(),
    rport: z.number().optional(),
    path: z.string().optional(),
    latency_us: z.number().optional(),
    ret: z.number().optional(),
  }),
  z.object({ type: z.literal("connect_failed"), ...who, proto: z.literal("tcp"), ...inet, latency_us: z.number().optional(), reason: z.string() }),
  z.object({ type: z.literal("accept"), ...who, ...inet }),
  z.object({
    type: z.literal("close"),
    ...who,
    ...inet,
    duration_ms: z.number(),
    bytes_sent: z.number().optional(),
    bytes_received: z.number().optional(),
    side: z.string().optional(),
  }),
  z.object({ type: z.literal("exec"), ...who, ppid: z.number(), filename: z.string() }),
  z.object({ type: z.literal("exit"), ...who, ppid: z.number(), exit_code: z.number() }),
]);
export type ProbeLine = z.infer<typeof probeLineSchema>;

/** A probe line as an event, given its wall time (the supervisor's wallTime of line.ts_ns): pure. */
export function eventOfLine(line: ProbeLine, tsMs: number): ConnectionEvent {
  const base = { ts_ms: Math.round(tsMs), source: "ebpf" as const, pid: line.pid, uid: line.uid, comm: line.comm };
  switch (line.type) {
    case "listen":
      return makeEvent({ ...base, type: "listen", protocol: "tcp", family: line.family, local_ip: line.laddr, local_port: line.lport });
    case "exec":
      return makeEvent({ ...base, type: "exec", ppid: line.ppid, path: line.filename });
    case "exit":
      return makeEvent({ ...base, type: "exit", ppid: line.ppid, exit_code: line.exit_code });
    case "connect": {
      const failed = line.ret !== undefined && line.ret < 0;
      return makeEvent({
        ...base,
        type: "connect",
        protocol: line.proto,
        family: line.family,
        local_ip: line.laddr || null,
        local_port: line.lport ?? null,
        remote_ip: line.raddr || null,
        remote_port: line.proto === "unix" ? null : (line.rport ?? null),
        path: line.path || null,
        latency_us: line.latency_us ?? null,
        return_code: line.ret ?? null,
        reason: failed ? errnoName(line.ret!) : null,
      });
    }
    default: {
      const addresses = { protocol: "tcp" as const, family: line.family, local_ip: line.laddr, local_port: line.lport, remote_ip: line.raddr, remote_port: line.rport };
      if (line.type === "accept") return makeEvent({ ...base, ...addresses, type: "accept" });
      if (line.type === "connect_failed") {
        // "errno:113" (an ICMP error, or a connect() that failed before any SYN) → "EHOSTUNREACH".
        const errno = /^errno:(\d+)$/.exec(line.reason);
        return makeEvent({ ...base, ...addresses, type: "connect_failed", reason: errno ? errnoName(Number(errno[1])) : line.reason, latency_us: line.latency_us ?? null });
      }
      return makeEvent({
        ...base,
        ...addresses,
        type: "close",
        duration_ms: line.duration_ms < 0 ? null : line.duration_ms,
        bytes_sent: line.bytes_sent ?? null,
        bytes_received: line.bytes_received ?? null,
      });
    }
  }
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
    this.supervisor = new ProbeSupervisor<ProbeLine>({
      probe,
      schema: probeLineSchema,
      env: probeEnv(),
      onEvent: (line) => this.add(eventOfLine(line, this.supervisor!.wallTime(line.ts_ns))),
      onLost: (count, atMs) => this.losses.lost(count, atMs),
      onGap: (gap) => this.losses.gap(gap),
      onFailed: (error) => {
        if (source === "auto") this.startPolling(error);
        else logger.error(`connection events are off: ${error} (--events-source ebpf: no fallback to ss polling)`);
      },
    });
    this.supervisor.start();
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
    };
  }

  /** How complete the events of [sinceMs, untilMs] are; totalsExact once totals come from in-kernel counts. */
  completeness(sinceMs: number, untilMs: number, totalsExact = false): Completeness {
    return this.losses.window(sinceMs, untilMs, { source: this.source, totalsExact, pollIntervalMs: this.poller?.intervalMs });
  }

  async stop(): Promise<void> {
    this.poller?.stop();
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
