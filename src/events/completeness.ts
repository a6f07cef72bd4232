// How complete an answer built from events is: the probe's lost lines over time (per-second buckets)
// and its gaps (down from..to), kept as long as the history keeps events, and for any window the
// lines lost in it, whether it is complete, and one sentence saying why not. Pure: the monitor feeds
// it (supervisor onLost/onGap) and passes the current source; the tools spread completenessShape.
import { z } from "zod";
import type { EventSource } from "./model.ts";

export const completenessShape = {
  lost_events: z
    .number()
    .describe("event lines the probe reported lost in this window (the kernel's buffer was full); 0 with ebpf and no gap means every event is here"),
  complete: z
    .boolean()
    .describe("true when this window's events are all recorded: eBPF source, no lines lost, the probe never down; false with ss polling (sampled)"),
  note: z.string().optional().describe("when complete is false: one sentence saying what is missing and what it means for the numbers"),
};
export const completenessSchema = z.object(completenessShape);
export type Completeness = z.infer<typeof completenessSchema>;

/** A time the probe was down (supervisor onGap): to_ms null while it is still down. */
export interface Gap {
  from_ms: number;
  to_ms: number | null;
  reason: string;
}

export interface WindowContext {
  /** The monitor's source now. */
  source: EventSource | "none";
  /** Totals come from in-kernel counts (exact even when lines are lost); false until they do. */
  totalsExact?: boolean;
  /** ss polling's interval, for its note. */
  pollIntervalMs?: number;
}

export const DEFAULT_KEEP_MS = 24 * 60 * 60 * 1000;
/**
 * Gaps kept at most. A probe that keeps dying restarts with a backoff of up to 30 s, and one that
 * never gets ready is given up after three tries: under 3,000 gaps a day even at worst.
 */
export const MAX_GAPS = 4_096;

/** Sorted insertion point of `value` in ascending `list` (the first index whose value is >= it). */
function lowerBound(list: readonly number[], value: number): number {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (list[mid]! < value) low = mid + 1;
    else high = mid;
  }
  return low;
}

export class CompletenessLog {
  /** Seconds since the epoch that had losses, ascending and distinct, with the lines lost in each. */
  private readonly seconds: number[] = [];
  private readonly counts: number[] = [];
  private readonly gaps: Gap[] = [];
  private readonly keepMs: number;
  private readonly maxBuckets: number;
  private readonly maxGaps: number;
  /** The latest time told, what retention counts back from (a clock stepped back keeps nothing longer). */
  private latestMs = Number.NEGATIVE_INFINITY;

  constructor(options: { keepMs?: number; maxGaps?: number } = {}) {
    this.keepMs = options.keepMs ?? DEFAULT_KEEP_MS;
    this.maxBuckets = Math.ceil(this.keepMs / 1000) + 1;
    this.maxGaps = options.maxGaps ?? MAX_GAPS;
  }

  /** Lines reported lost at atMs (supervisor onLost). */
  lost(count: number, atMs: number): void {
    if (!(count > 0) || !Number.isFinite(atMs)) return;
    const second = Math.floor(atMs / 1000);
    const last = this.seconds.length - 1;
    if (last >= 0 && this.seconds[last] === second) this.counts[last]! += count;
    else if (last < 0 || this.seconds[last]! < second) {
      this.seconds.push(second);
      this.counts.push(count);
    } else {
      // The wall clock stepped back (NTP): into its place, so windows still find it.
      const at = lowerBound(this.seconds, second);
      if (this.seconds[at] === second) this.counts[at]! += count;
      else {
        this.seconds.splice(at, 0, second);
        this.counts.splice(at, 0, count);
      }
    }
    this.advance(atMs);
  }

  /** A gap opened (to_ms null) or closed (supervisor onGap tells both, for one from_ms). */
  gap(gap: Gap): void {
    const known = this.gaps.findLast((entry) => entry.from_ms === gap.from_ms);
    if (known) {
      known.to_ms = gap.to_ms;
      known.reason = gap.reason;
    } else {
      this.gaps.push({ ...gap });
      if (this.gaps.length > this.maxGaps) this.gaps.splice(0, this.gaps.length - this.maxGaps);
    }
    this.advance(gap.to_ms ?? gap.from_ms);
  }

  /** Forgets what is older than keepMs before the latest time told; buckets are also capped by count. */
  private advance(atMs: number): void {
    if (atMs <= this.latestMs) return;
    this.latestMs = atMs;
    const cutoff = atMs - this.keepMs;
    const oldBuckets = Math.max(lowerBound(this.seconds, Math.floor(cutoff / 1000)), this.seconds.length - this.maxBuckets);
    if (oldBuckets > 0) {
      this.seconds.splice(0, oldBuckets);
      this.counts.splice(0, oldBuckets);
    }
    const oldGaps = this.gaps.findIndex((gap) => gap.to_ms === null || gap.to_ms >= cutoff);
    if (oldGaps !== 0) this.gaps.splice(0, oldGaps === -1 ? this.gaps.length : oldGaps);
  }

  /** Lines lost in [sinceMs, untilMs]: every second that overlaps it (a report arrives just after its losses). */
  lostIn(sinceMs: number, untilMs: number): number {
    let total = 0;
    const last = Math.floor(untilMs / 1000);
    for (let i = lowerBound(this.seconds, Math.floor(sinceMs / 1000)); i < this.seconds.length && this.seconds[i]! <= last; i++) total += this.counts[i]!;
    return total;
  }

  /** The probe's down time within [sinceMs, untilMs]: ms, how many gaps touch it, and whether one is still open. */
  downIn(sinceMs: number, untilMs: number): { ms: number; gaps: number; open: boolean } {
    let ms = 0;
    let gaps = 0;
    let open = false;
    for (const gap of this.gaps) {
      const end = gap.to_ms ?? untilMs;
      if (gap.from_ms > untilMs || end < sinceMs) continue;
      gaps++;
      open ||= gap.to_ms === null;
      ms += Math.max(0, Math.min(end, untilMs) - Math.max(gap.from_ms, sinceMs));
    }
    return { ms, gaps, open };
  }

  /** The answer for a window [sinceMs, untilMs]. */
  window(sinceMs: number, untilMs: number, context: WindowContext): Completeness {
    const lost = this.lostIn(sinceMs, untilMs);
    const down = this.downIn(sinceMs, untilMs);
    const complete = context.source === "ebpf" && lost === 0 && down.gaps === 0;
    if (complete) return { lost_events: 0, complete: true };
    return { lost_events: lost, complete: false, note: completenessNote({ lost, down, ...context }) };
  }

  /** What is held, for tests and /health-like views. */
  get size(): { buckets: number; gaps: number } {
    return { buckets: this.seconds.length, gaps: this.gaps.length };
  }
}

/** 12400 → "12,400". */
const count = (value: number) => Math.round(value).toLocaleString("en-US");

/** 3240 → "3.2 s", 75000 → "75 s", 600000 → "10 min", 9000000 → "2.5 h". */
export function formatDuration(ms: number): string {
  const seconds = ms / 1000;
  if (seconds < 10) return `${Math.max(0.1, Math.round(seconds * 10) / 10)} s`;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 360) / 10} h`;
}

/**
 * The one sentence of an incomplete window, for people and agents. The source says the most (no
 * source, or sampling by ss), then lost lines and down time, which are told together when both.
 */
export function completenessNote(facts: WindowContext & { lost: number; down: { ms: number; gaps: number; open: boolean } }): string {
  if (facts.source === "none") return "no event source is running (the eBPF probe cannot run and ss polling is off, see get_system_info): events in this window are missing.";
  if (facts.source === "ss-poll") {
    const every = facts.pollIntervalMs === undefined ? "few seconds" : formatDuration(facts.pollIntervalMs);
    return `events come from ss polling, which samples every ${every}: short-lived connections are missed.`;
  }
  const lost = `${count(facts.lost)} event ${facts.lost === 1 ? "line was" : "lines were"} lost`;
  const { down } = facts;
  const why = down.open ? (down.gaps === 1 ? "restarting" : `${down.gaps} restarts, still down`) : down.gaps === 1 ? "restart" : `${down.gaps} restarts`;
  const wasDown = `the probe was down for ${formatDuration(down.ms)} in this window (${why})`;
  if (down.gaps === 0) return `${lost} in this window; ${facts.totalsExact ? "totals are exact, details are a sample" : "totals and details undercount"}.`;
  // While the probe is down nothing counts, in the kernel either: totals undercount whatever counts them.
  if (facts.lost > 0) return `${lost} and ${wasDown}: totals and details undercount.`;
  return `${wasDown}: events in that time are missing.`;
}
