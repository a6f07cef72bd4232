import { describe, expect, test } from "bun:test";
import { CompletenessLog, completenessNote, formatDuration } from "../../../src/events/completeness.ts";

const T = 1_700_000_000_000; // a whole second
const ebpf = { source: "ebpf" as const };

describe("lost lines per second", () => {
  test("a window with no losses and no gaps from eBPF is complete, with no note", () => {
    const log = new CompletenessLog();
    log.lost(5, T + 10_000);
    expect(log.window(T, T + 9_000, ebpf)).toEqual({ lost_events: 0, complete: true });
  });

  test("losses in the window are summed; those outside it are not", () => {
    const log = new CompletenessLog();
    log.lost(100, T + 1_200);
    log.lost(12_300, T + 1_900); // the same second: one bucket
    log.lost(7, T + 5_000);
    log.lost(1, T + 60_000);
    expect(log.size.buckets).toBe(3);
    expect(log.lostIn(T, T + 5_000)).toBe(12_407);
    expect(log.window(T, T + 2_000, ebpf)).toEqual({
      lost_events: 12_400,
      complete: false,
      note: "12,400 event lines were lost in this window; totals and details undercount.",
    });
    expect(log.window(T, T + 2_000, { ...ebpf, totalsExact: true }).note).toBe("12,400 event lines were lost in this window; totals are exact, details are a sample.");
  });

  test("a second that overlaps either end of the window counts (reports arrive just after their losses)", () => {
    const log = new CompletenessLog();
    log.lost(3, T + 999);
    expect(log.lostIn(T + 500, T + 600)).toBe(3);
    expect(log.lostIn(T + 1_000, T + 5_000)).toBe(0);
    expect(log.lostIn(T - 5_000, T)).toBe(3);
  });

  test("one lost line is singular", () => {
    const log = new CompletenessLog();
    log.lost(1, T);
    expect(log.window(T, T + 1, ebpf).note).toBe("1 event line was lost in this window; totals and details undercount.");
  });

  test("a clock stepped back puts the loss in its place", () => {
    const log = new CompletenessLog();
    log.lost(1, T + 10_000);
    log.lost(2, T + 2_000);
    log.lost(4, T + 10_500);
    expect(log.lostIn(T, T + 3_000)).toBe(2);
    expect(log.lostIn(T + 9_000, T + 11_000)).toBe(5);
  });

  test("zero, negative and NaN counts are ignored", () => {
    const log = new CompletenessLog();
    for (const value of [0, -3, Number.NaN]) log.lost(value, T);
    expect(log.size.buckets).toBe(0);
  });
});

describe("bounds", () => {
  test("buckets older than the kept age are forgotten", () => {
    const log = new CompletenessLog({ keepMs: 60_000 });
    log.lost(9, T);
    log.lost(1, T + 30_000);
    expect(log.lostIn(T, T + 30_000)).toBe(10);
    log.lost(1, T + 90_000);
    expect(log.lostIn(T, T + 90_000)).toBe(2);
    expect(log.size.buckets).toBe(2);
  });

  test("a day of losses every second stays at a day of buckets", () => {
    const log = new CompletenessLog({ keepMs: 3_600_000 });
    for (let second = 0; second < 7_200; second++) log.lost(1, T + second * 1000);
    expect(log.size.buckets).toBeLessThanOrEqual(3_601);
    expect(log.lostIn(T, T + 7_200_000)).toBe(log.size.buckets);
  });

  test("gaps are capped by count and forgotten once they ended before the kept age", () => {
    const capped = new CompletenessLog({ maxGaps: 3 });
    for (let i = 0; i < 10; i++) capped.gap({ from_ms: T + i * 1000, to_ms: T + i * 1000 + 100, reason: "killed by SIGKILL" });
    expect(capped.size.gaps).toBe(3);
    const aged = new CompletenessLog({ keepMs: 60_000 });
    aged.gap({ from_ms: T, to_ms: T + 1_000, reason: "exited with code 1" });
    aged.gap({ from_ms: T + 120_000, to_ms: null, reason: "exited with code 1" });
    expect(aged.size.gaps).toBe(1);
  });
});

describe("gaps", () => {
  test("a closed gap inside the window: its overlap, the restart, and the missing events", () => {
    const log = new CompletenessLog();
    const gap = { from_ms: T + 10_000, to_ms: null as number | null, reason: "killed by SIGKILL" };
    log.gap(gap);
    log.gap({ ...gap, to_ms: T + 13_240 }); // closed: the same gap, told again
    expect(log.size.gaps).toBe(1);
    expect(log.downIn(T, T + 60_000)).toEqual({ ms: 3_240, gaps: 1, open: false });
    expect(log.window(T, T + 60_000, ebpf)).toEqual({
      lost_events: 0,
      complete: false,
      note: "the probe was down for 3.2 s in this window (restart): events in that time are missing.",
    });
    // Partly in the window: only the overlap.
    expect(log.downIn(T + 12_000, T + 60_000).ms).toBe(1_240);
    // Before or after it: complete.
    expect(log.window(T + 14_000, T + 60_000, ebpf).complete).toBe(true);
    expect(log.window(T, T + 9_000, ebpf).complete).toBe(true);
  });

  test("an open gap runs to the window's end and says the probe is restarting", () => {
    const log = new CompletenessLog();
    log.gap({ from_ms: T + 5_000, to_ms: null, reason: "exited with code 1" });
    expect(log.downIn(T, T + 20_000)).toEqual({ ms: 15_000, gaps: 1, open: true });
    expect(log.window(T, T + 20_000, ebpf).note).toBe("the probe was down for 15 s in this window (restarting): events in that time are missing.");
  });

  test("several gaps are summed and counted; lost lines and a gap are told in one sentence", () => {
    const log = new CompletenessLog();
    log.gap({ from_ms: T + 1_000, to_ms: T + 2_000, reason: "a" });
    log.gap({ from_ms: T + 5_000, to_ms: T + 7_500, reason: "b" });
    log.lost(2_500, T + 8_000);
    expect(log.window(T, T + 10_000, { ...ebpf, totalsExact: true })).toEqual({
      lost_events: 2_500,
      complete: false,
      note: "2,500 event lines were lost and the probe was down for 3.5 s in this window (2 restarts): totals and details undercount.",
    });
  });
});

describe("sources", () => {
  test("ss polling is never complete, and says how often it samples", () => {
    const log = new CompletenessLog();
    expect(log.window(T, T + 60_000, { source: "ss-poll", pollIntervalMs: 2_000 })).toEqual({
      lost_events: 0,
      complete: false,
      note: "events come from ss polling, which samples every 2 s: short-lived connections are missed.",
    });
  });

  test("no source is never complete", () => {
    const answer = new CompletenessLog().window(T, T + 60_000, { source: "none" });
    expect(answer.complete).toBe(false);
    expect(answer.note).toContain("no event source is running");
  });

  test("the note is one sentence", () => {
    const facts = { lost: 12_400, down: { ms: 3_200, gaps: 1, open: false } };
    for (const source of ["ebpf", "ss-poll", "none"] as const) {
      const note = completenessNote({ ...facts, source });
      expect(note.endsWith(".")).toBe(true);
      expect(note.slice(0, -1)).not.toMatch(/\.\s/);
    }
  });
});

test("durations read as people say them", () => {
  expect([20, 3_240, 75_000, 600_000, 9_000_000].map(formatDuration)).toEqual(["0.1 s", "3.2 s", "75 s", "10 min", "2.5 h"]);
});
