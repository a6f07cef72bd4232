// Runs one probe as a supervised child process: bpftrace with the embedded script, its stdout read as
// NDJSON (the ndjson package), each line checked with zod. A bad line is counted and logged, never
// fatal. A probe that dies is restarted with backoff and the gap is recorded; one that never gets
// going (no root, a kernel that refuses it) is given up after a few tries with its error kept.
// bpftrace's "Lost N events" (stderr) and a probe's own {"type":"dropped","count":N} lines count as
// lost events. A probe whose header says `Output: json` runs under `bpftrace -f json`: its printf
// lines arrive wrapped ({"type":"printf","data":"..."}) and are unwrapped here, and each map it
// prints arrives as one {"type":"map","name":"@m","data":...} line for its schema. Every probe runs under a small sh wrapper that kills it when our end of its stdin
// closes, so a probe never outlives ipcscope, even a SIGKILLed one (see WRAPPER). Stopping is
// SIGINT, then SIGTERM, then SIGKILL.
import ndjson from "ndjson";
import type { z } from "zod";
import { logger } from "../logger.ts";
import { which } from "../util/exec.ts";
import { materializeProbe, type Probe } from "./catalog.ts";
import { bpftraceErrors } from "./verify.ts";

export interface ProbeGap {
  from_ms: number;
  to_ms: number | null;
  reason: string;
}

export interface ProbeStatus {
  probe: string;
  state: "starting" | "running" | "restarting" | "stopped" | "failed";
  pid: number | null;
  started_at: string | null;
  restarts: number;
  events: number;
  bad_lines: number;
  lost_events: number;
  last_error: string | null;
  /** The latest gaps (the probe was down, so events in them are missing), newest last. */
  gaps: ProbeGap[];
}

export interface SupervisorOptions<T> {
  probe: Probe;
  /** Each line is checked against this; lines of type "ready" and "heartbeat" are handled here. */
  schema: z.ZodType<T>;
  onEvent: (event: T) => void;
  /** Told when a gap opens (to_ms null) and when it closes. */
  onGap?: (gap: ProbeGap) => void;
  /** Told each time the probe says it is attached ("ready"): at start and after each restart. */
  onReady?: () => void;
  /** Told once when the probe is given up. */
  onFailed?: (error: string) => void;
  /** Told each time lines are reported lost (count > 0), with the wall time the report arrived. */
  onLost?: (count: number, atMs: number) => void;
  env?: Record<string, string>;
  /** Restart backoff: 1 s, doubling, capped. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Consecutive starts that never reached "ready" before giving up. */
  maxFailedStarts?: number;
  /** A running probe silent for this long (heartbeats stopped) is killed and restarted. */
  silenceMs?: number;
  /** Wait between SIGINT, SIGTERM and SIGKILL when stopping (2 s). */
  stopStepMs?: number;
  /** Positional parameters of the script ($1, $2, ... in bpftrace). */
  args?: string[];
  /** bpftrace; tests may point this at another program that speaks the same NDJSON. */
  command?: (scriptPath: string, args: string[], json: boolean) => string[];
}

const STOP_STEP_MS = 2_000;

/**
 * Every probe runs under this sh wrapper, which guarantees no orphans whatever the probe does:
 * a watcher holds the probe's stdin pipe from us and, when it reads EOF (we closed it, or we died,
 * even by SIGKILL), sends the probe SIGINT and 2 s later SIGKILL. (The heartbeat's SIGPIPE was the
 * first idea, but bpftrace stops writing for good once a write to its stdout fails, and then
 * nothing ever reaches the dead pipe.) The wrapper tells us the probe's own pid on stderr, and
 * exits with the probe's status. Background jobs of a non-interactive sh get stdin from /dev/null,
 * hence the copy on fd 3.
 */
const WRAPPER = [
  "exec 3<&0",
  '"$@" </dev/null 3<&- &',
  "p=$!",
  'echo "ipcscope-probe-pid $p" >&2',
  "( while read -r _; do :; done; kill -INT $p 2>/dev/null; sleep 2; kill -KILL $p 2>/dev/null ) <&3 &",
  "w=$!",
  "exec 3<&-",
  "wait $p",
  "s=$?",
  "kill $w 2>/dev/null",
  "exit $s",
].join("\n");
const SIGNAL_NAMES: Record<number, string> = { 1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 15: "SIGTERM" };
const SH_JOB_STATUS = /^(Killed|Terminated|Interrupt|Hangup)$/;
const PROBE_PID = /^ipcscope-probe-pid (\d+)$/;
const KEPT_GAPS = 10;
const LOST = /^Lost (\d+) events/;

/** How long a probe may take to compile and attach (its ready line) before it counts as stuck. */
const ATTACH_MS = 30_000;

/** Offsets from one ready/heartbeat line are trusted this long before a later, slower one may replace them. */
const CLOCK_WINDOW_MS = 60_000;

export class ProbeSupervisor<T extends { type: string }> {
  private child: ReturnType<typeof Bun.spawn> | null = null;
  /** Settles when the current child's stdout has been read to its end and every line handled. */
  private reading: Promise<void> = Promise.resolve();
  private script: { path: string; cleanup: () => void } | null = null;
  private stopping = false;
  private failedStarts = 0;
  private backoffMs: number;
  private restartTimer: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private lastLineAt = 0;
  private readyAt = 0;
  private openGap: ProbeGap | null = null;
  /** The probe's own pid (inside the wrapper), once the wrapper said it. */
  private probePid: number | null = null;
  /** Wall ms minus the probe's ns/1e6, from its ready and heartbeat lines (see wallTime). */
  private clockOffsetMs: number | null = null;
  private clockSetAt = 0;
  private readonly state: ProbeStatus;

  constructor(private readonly options: SupervisorOptions<T>) {
    this.backoffMs = options.initialBackoffMs ?? 1_000;
    this.state = {
      probe: options.probe.name,
      state: "stopped",
      pid: null,
      started_at: null,
      restarts: 0,
      events: 0,
      bad_lines: 0,
      lost_events: 0,
      last_error: null,
      gaps: [],
    };
  }

  status(): ProbeStatus {
    return { ...this.state, gaps: [...this.state.gaps] };
  }

  /**
   * Wall time (ms since the epoch) of a probe timestamp. The probe's clock (bpftrace's nsecs:
   * monotonic or boot time, depending on the version) is tied to the wall clock by its ready and
   * heartbeat lines, which are printed at once: the smallest (now - ts) seen is the truest, as
   * reading only ever adds delay; after a minute a newer reading may replace it (NTP steps, suspend).
   */
  wallTime(tsNs: number): number {
    return this.clockOffsetMs === null ? Date.now() : tsNs / 1e6 + this.clockOffsetMs;
  }

  /** The probe's clock (its ns) at a wall time: the inverse of wallTime. */
  probeNs(atMs = Date.now()): number {
    return this.clockOffsetMs === null ? 0 : (atMs - this.clockOffsetMs) * 1e6;
  }

  private calibrate(tsNs: unknown): void {
    if (typeof tsNs !== "number") return;
    const offset = Date.now() - tsNs / 1e6;
    if (this.clockOffsetMs === null || offset < this.clockOffsetMs || Date.now() - this.clockSetAt > CLOCK_WINDOW_MS) {
      this.clockOffsetMs = offset;
      this.clockSetAt = Date.now();
    }
  }

  get running(): boolean {
    return this.state.state === "running";
  }

  start(): void {
    if (this.child || this.restartTimer) return;
    this.stopping = false;
    this.spawn();
  }

  private spawn(): void {
    this.restartTimer = null;
    const command = this.options.command ?? defaultCommand;
    this.script ??= materializeProbe(this.options.probe);
    let argv: string[];
    try {
      argv = command(this.script.path, this.options.args ?? [], this.options.probe.output === "json");
    } catch (error) {
      this.fail(error instanceof Error ? error.message : String(error));
      return;
    }
    this.state.state = this.state.restarts === 0 && this.state.started_at === null ? "starting" : "restarting";
    let child: ReturnType<typeof Bun.spawn>;
    try {
      child = Bun.spawn(["/bin/sh", "-c", WRAPPER, "ipcscope-probe", ...argv], {
        stdin: "pipe",
        stdout: "pipe",
        stderr: "pipe",
        env: { ...process.env, ...this.options.env },
      });
    } catch (error) {
      this.exited(`cannot start ${argv[0]}: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    this.child = child;
    this.probePid = null;
    this.state.pid = null;
    this.lastLineAt = Date.now();
    this.readyAt = 0;
    const stderr = this.readStderr(child);
    this.reading = this.read(child).catch((error) => logger.warn(`probe ${this.options.probe.name}: reading its output failed: ${error}`));
    void this.reading.finally(async () => {
      const code = await child.exited;
      const errors = bpftraceErrors(await stderr.catch(() => ""));
      // The wrapper exits with 128+N when the probe died of signal N (sh's convention).
      const signal = child.signalCode ?? (code !== null && code > 128 && code < 160 ? SIGNAL_NAMES[code - 128] : undefined);
      const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
      if (this.child === child) this.exited(errors.length > 0 ? `${errors.slice(0, 3).join(" | ")} (${how})` : how);
    });
    this.watchdog ??= setInterval(() => {
      // Before its ready line bpftrace is compiling and attaching: seconds when idle, much longer
      // on a loaded host, so only a probe that never attaches within ATTACH_MS counts as stuck.
      const allowedMs = this.readyAt ? (this.options.silenceMs ?? 5_000) : Math.max(ATTACH_MS, this.options.silenceMs ?? 0);
      if (this.child && !this.stopping && Date.now() - this.lastLineAt > allowedMs) {
        logger.warn(`probe ${this.options.probe.name} (pid ${this.probePid ?? this.child.pid}) silent for ${allowedMs} ms${this.readyAt ? "" : " before attaching"}: killing it to restart`);
        this.signal(this.child, "SIGKILL");
      }
    }, 1_000);
    this.watchdog.unref?.();
  }

  private async read(child: ReturnType<typeof Bun.spawn>): Promise<void> {
    const parser = ndjson.parse();
    parser.on("data", (value: unknown) => (this.options.probe.output === "json" ? this.jsonRecord(value) : this.line(value)));
    // ndjson reports a line that is not JSON as an error event and goes on with the next one.
    parser.on("error", (error: Error) => {
      this.lastLineAt = Date.now();
      const row = error.message.replace(/^Could not parse row /, "");
      const lost = LOST.exec(row);
      if (lost) {
        this.lost(Number(lost[1]));
        return;
      }
      this.bad(`not JSON: ${row}`);
    });
    const reader = (child.stdout as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.write(Buffer.from(value));
    }
    parser.end();
  }

  /** bpftrace reports ring-buffer overflows on stderr ("Lost N events"): counted as they come. The rest is kept for errors. */
  private async readStderr(child: ReturnType<typeof Bun.spawn>): Promise<string> {
    const decoder = new TextDecoder();
    let kept = "";
    let partial = "";
    for await (const chunk of child.stderr as ReadableStream<Uint8Array>) {
      partial += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, newline);
        partial = partial.slice(newline + 1);
        const lost = LOST.exec(line.trim());
        const pid = PROBE_PID.exec(line.trim());
        if (lost) this.lost(Number(lost[1]));
        else if (SH_JOB_STATUS.test(line.trim())) continue; // the wrapper's "Killed": the exit says it
        else if (pid && this.child === child) this.state.pid = this.probePid = Number(pid[1]);
        else if (kept.length < 16_384) kept += `${line}\n`;
      }
    }
    return kept + partial;
  }

  /** One record of `bpftrace -f json`: printf text (our own NDJSON lines), a map, or lost events. */
  private jsonRecord(value: unknown): void {
    const record = value as { type?: unknown; data?: unknown } | null;
    if (record?.type === "printf" && typeof record.data === "string") {
      for (const text of record.data.split("\n")) {
        if (text.trim() === "") continue;
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          this.lastLineAt = Date.now();
          this.bad(`not JSON: ${text.slice(0, 120)}`);
          continue;
        }
        this.line(parsed);
      }
    } else if (record?.type === "map" && record.data && typeof record.data === "object") {
      for (const [name, data] of Object.entries(record.data)) this.line({ type: "map", name, data });
    } else if (record?.type === "lost_events") {
      this.lastLineAt = Date.now();
      this.lost(Number((record.data as { events?: unknown } | undefined)?.events) || 0);
    } else if (record?.type === "attached_probes") {
      this.lastLineAt = Date.now();
    } else {
      this.line(value);
    }
  }

  private line(value: unknown): void {
    this.lastLineAt = Date.now();
    const type = (value as { type?: unknown } | null)?.type;
    if (type === "heartbeat" || type === "ready") this.calibrate((value as { ts_ns?: unknown }).ts_ns);
    if (type === "heartbeat") return;
    if (type === "dropped") {
      // The probe's own in-kernel queue overflowed: as lost as a ring-buffer overflow.
      this.lost(Number((value as { count?: unknown }).count) || 0);
      return;
    }
    if (type === "ready") {
      this.ready();
      return;
    }
    const parsed = this.options.schema.safeParse(value);
    if (!parsed.success) {
      this.bad(`${parsed.error.issues[0]?.message ?? "invalid"}: ${JSON.stringify(value).slice(0, 120)}`);
      return;
    }
    this.state.events++;
    this.options.onEvent(parsed.data);
  }

  private ready(): void {
    this.readyAt = Date.now();
    this.state.state = "running";
    this.state.started_at = new Date().toISOString();
    this.failedStarts = 0;
    this.options.onReady?.();
    if (this.openGap) {
      this.openGap.to_ms = this.readyAt;
      this.options.onGap?.(this.openGap);
      logger.info(`probe ${this.options.probe.name} is back after ${this.readyAt - this.openGap.from_ms} ms (restart ${this.state.restarts})`);
      this.openGap = null;
    } else {
      logger.debug(`probe ${this.options.probe.name} ready (pid ${this.child?.pid})`);
    }
  }

  /** Every report of lost lines (stderr, -f json records, the probe's own "dropped") comes through here. */
  private lost(count: number): void {
    if (!(count > 0)) return;
    this.state.lost_events += count;
    this.options.onLost?.(count, Date.now());
  }

  private bad(detail: string): void {
    this.state.bad_lines++;
    // The first few in full, then one in a thousand: a broken probe must not flood the log.
    if (this.state.bad_lines <= 5 || this.state.bad_lines % 1000 === 0) {
      logger.warn(`probe ${this.options.probe.name}: bad line #${this.state.bad_lines} ignored (${detail})`);
    }
  }

  private exited(detail: string): void {
    (this.child?.stdin as { end?: () => void } | undefined)?.end?.();
    this.child = null;
    this.probePid = null;
    this.state.pid = null;
    if (this.stopping) {
      this.state.state = "stopped";
      return;
    }
    this.state.last_error = detail;
    const ranFor = this.readyAt ? Date.now() - this.readyAt : 0;
    if (!this.readyAt) this.failedStarts++;
    if (this.failedStarts >= (this.options.maxFailedStarts ?? 3)) {
      this.fail(detail);
      return;
    }
    // A probe that ran a good while before dying starts over with a short backoff.
    if (ranFor > 60_000) this.backoffMs = this.options.initialBackoffMs ?? 1_000;
    if (!this.openGap) {
      this.openGap = { from_ms: Date.now(), to_ms: null, reason: detail };
      this.state.gaps.push(this.openGap);
      if (this.state.gaps.length > KEPT_GAPS) this.state.gaps.shift();
      this.options.onGap?.(this.openGap);
    }
    this.state.restarts++;
    this.state.state = "restarting";
    logger.warn(`probe ${this.options.probe.name} stopped (${detail}); restarting in ${this.backoffMs} ms`);
    this.restartTimer = setTimeout(() => this.spawn(), this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 30_000);
  }

  private fail(detail: string): void {
    this.state.state = "failed";
    this.state.last_error = detail;
    this.clearTimers();
    this.script?.cleanup();
    this.script = null;
    logger.warn(`probe ${this.options.probe.name} given up: ${detail}`);
    this.options.onFailed?.(detail);
  }

  private clearTimers(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }

  /** Signals the probe itself (the wrapper passes its exit on), or the wrapper before it said the pid. */
  private signal(child: ReturnType<typeof Bun.spawn>, signal: NodeJS.Signals): void {
    try {
      if (this.probePid !== null) process.kill(this.probePid, signal);
      else child.kill(signal);
    } catch {
      // already gone
    }
  }

  /** SIGINT (bpftrace detaches and exits), then SIGTERM, then SIGKILL, 2 s apart. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.clearTimers();
    const child = this.child;
    if (child) {
      for (const signal of ["SIGINT", "SIGTERM", "SIGKILL"] as const) {
        this.signal(child, signal);
        const exited = await Promise.race([child.exited.then(() => true), Bun.sleep(this.options.stopStepMs ?? STOP_STEP_MS).then(() => false)]);
        if (exited) break;
      }
    }
    // The wrapper's watcher ends with its stdin; the wrapper with the probe.
    (child?.stdin as { end?: () => void } | undefined)?.end?.();
    if (child) child.kill("SIGKILL");
    // What the probe printed on its way out (bpftrace's END: final maps) is handled before stop() returns.
    await Promise.race([this.reading, Bun.sleep(this.options.stopStepMs ?? STOP_STEP_MS)]);
    this.child = null;
    this.probePid = null;
    this.state.pid = null;
    if (this.state.state !== "failed") this.state.state = "stopped";
    this.script?.cleanup();
    this.script = null;
  }
}

function defaultCommand(scriptPath: string, args: string[], json: boolean): string[] {
  const bpftrace = which("bpftrace");
  if (!bpftrace) throw new Error("bpftrace is not installed (dnf install -y bpftrace, or apt-get install -y bpftrace)");
  if (process.geteuid?.() !== 0) throw new Error("probes need root (or CAP_BPF + CAP_PERFMON): run ipcscope as root");
  // -q: no "Attaching N probes" line on stdout; -B none: every line reaches us at once.
  return [bpftrace, "-q", "-B", "none", ...(json ? ["-f", "json"] : []), scriptPath, ...args];
}
