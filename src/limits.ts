// Limits every tool call passes through invokeTool(), whatever the transport: a per-call timeout,
// a rate limit on destructive tools, the number of probe windows and jobs running at once, and the
// cancellation of every call when the server shuts down. `serve` sets them from its flags.
import { ToolError } from "./errors.ts";

export interface Limits {
  /** A call running longer is cancelled (its abort signal fires) and answered with an error. */
  callTimeoutMs: number;
  /** Calls of destructive tools (previews included) per minute, for the whole server. */
  destructivePerMinute: number;
  /** Background jobs running at once; also the number of probe windows (inline or job) at once. */
  maxJobs: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = {
  // Above the longest inline window (55 s) plus a probe's compile time, with room to spare.
  callTimeoutMs: 120_000,
  destructivePerMinute: 20,
  maxJobs: 4,
};

export const limits: Limits = { ...DEFAULT_LIMITS };

export function configureLimits(next: Partial<Limits>): void {
  Object.assign(limits, next);
}

/** A refusal that tells the caller when to retry (the REST mirror answers 429 with Retry-After). */
export class RateLimitError extends ToolError {
  constructor(message: string, readonly retryAfterS: number) {
    super(message);
  }
}

const RATE_WINDOW_MS = 60_000;
const destructiveCalls: number[] = [];

/** Counts a destructive call, or refuses it when the last minute already had the limit. */
export function takeDestructiveCall(tool: string, now = Date.now()): void {
  while (destructiveCalls.length > 0 && destructiveCalls[0]! <= now - RATE_WINDOW_MS) destructiveCalls.shift();
  if (destructiveCalls.length >= limits.destructivePerMinute) {
    const retryAfterS = Math.max(1, Math.ceil((destructiveCalls[0]! + RATE_WINDOW_MS - now) / 1000));
    throw new RateLimitError(
      `${tool}: rate limit reached (${limits.destructivePerMinute} calls of destructive tools per minute, --destructive-rate-limit); retry in ${retryAfterS} s`,
      retryAfterS,
    );
  }
  destructiveCalls.push(now);
}

/** Forgets the destructive calls counted so far (tests). */
export function resetDestructiveCalls(): void {
  destructiveCalls.length = 0;
}

let probeWindows = 0;

/**
 * Takes one of the probe-window slots (each window runs its own bpftrace) and returns its release;
 * refuses when all are taken, so a burst of calls cannot start a bpftrace each.
 */
export function takeProbeSlot(probe: string): () => void {
  if (probeWindows >= limits.maxJobs) {
    throw new ToolError(
      `${probeWindows} probe windows are already running (at most ${limits.maxJobs}, --max-jobs): wait for one to end, or stop a background one with stop_capture`,
    );
  }
  probeWindows++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    probeWindows--;
  };
}

export function runningProbeWindows(): number {
  return probeWindows;
}

let calls = 0;

/** Counts a running call until the returned function is called. */
export function callStarted(): () => void {
  calls++;
  let ended = false;
  return () => {
    if (!ended) calls--;
    ended = true;
  };
}

/** Tool calls running now (shutdown waits for them to answer). */
export function runningCalls(): number {
  return calls;
}

/** Waits until `count()` is 0, or `graceMs` at most (shutdown: what was cancelled gets to finish). */
export async function drained(count: () => number, graceMs: number): Promise<void> {
  const end = Date.now() + graceMs;
  while (count() > 0 && Date.now() < end) await Bun.sleep(20);
}

const shutdown = new AbortController();

/** Fires when the server shuts down: every running call is cancelled. */
export const shutdownSignal: AbortSignal = shutdown.signal;

export function cancelAllCalls(): void {
  shutdown.abort(new Error("the server is shutting down"));
}
