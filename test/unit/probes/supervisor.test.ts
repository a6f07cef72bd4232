// The supervisor against real child processes that speak a probe's NDJSON (sh scripts made here):
// what bpftrace would do when it misbehaves, without needing root.
import { afterEach, describe, expect, test } from "bun:test";
import { z } from "zod";
import { parseProbeHeader } from "../../../src/probes/catalog.ts";
import { ProbeSupervisor, type ProbeGap } from "../../../src/probes/supervisor.ts";
import { alive } from "../../helpers.ts";

const probe = parseProbeHeader("fake", "/*\n * fake - a test probe\n * Tracepoints: sched:sched_process_exec\n */\n");
const schema = z.object({ type: z.literal("event"), n: z.number() });
type Line = z.infer<typeof schema>;

const running: ProbeSupervisor<Line>[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((supervisor) => supervisor.stop()));
});

function supervise(script: string, extra: Partial<ConstructorParameters<typeof ProbeSupervisor<Line>>[0]> = {}) {
  const events: Line[] = [];
  const gaps: ProbeGap[] = [];
  const failures: string[] = [];
  const supervisor = new ProbeSupervisor<Line>({
    probe,
    schema,
    onEvent: (event) => events.push(event),
    onGap: (gap) => gaps.push({ ...gap }),
    onFailed: (error) => failures.push(error),
    command: () => ["/bin/sh", "-c", script],
    initialBackoffMs: 100,
    stopStepMs: 300,
    ...extra,
  });
  running.push(supervisor);
  supervisor.start();
  return { supervisor, events, gaps, failures };
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await Bun.sleep(20);
  }
}


describe("ProbeSupervisor", () => {
  test("valid lines become events; garbage, wrong shapes and lost-event reports are counted, not fatal", async () => {
    const reports: { count: number; atMs: number }[] = [];
    const startedAt = Date.now();
    const { supervisor, events } = supervise(
      `echo '{"type":"ready","ts_ns":1}'; echo '{"type":"event","n":1}'; echo 'garbage {'; echo 'Lost 7 events'; ` +
        `echo '{"type":"event","n":"two"}'; echo '{"type":"heartbeat","ts_ns":2}'; echo '{"type":"event","n":3}'; ` +
        `echo 'Lost 5 events' >&2; echo '{"type":"dropped","ts_ns":3,"count":4}'; exec sleep 30`,
      { onLost: (count, atMs) => reports.push({ count, atMs }) },
    );
    await until(() => events.length === 2 && supervisor.status().bad_lines === 2 && supervisor.status().lost_events === 16);
    expect(events).toEqual([{ type: "event", n: 1 }, { type: "event", n: 3 }]);
    const status = supervisor.status();
    // 7 on stdout (bpftrace 0.17), 5 on stderr (later versions), 4 from the probe's own queue.
    expect(status).toMatchObject({ state: "running", events: 2, bad_lines: 2, lost_events: 16, restarts: 0 });
    expect(status.pid).toBeGreaterThan(0);
    // Each report reaches onLost as it comes (stdout and stderr race, so in either order), with its wall time.
    expect(reports.map((report) => report.count).sort((a, b) => a - b)).toEqual([4, 5, 7]);
    for (const report of reports) expect(report.atMs).toBeGreaterThanOrEqual(startedAt);
  });

  test("a probe killed while running is restarted, and the gap is recorded from its death to its next ready", async () => {
    const { supervisor, gaps } = supervise(`echo '{"type":"ready","ts_ns":1}'; exec sleep 30`);
    await until(() => supervisor.running);
    const first = supervisor.status().pid!;
    process.kill(first, "SIGKILL");
    await until(() => supervisor.running && supervisor.status().pid !== first && supervisor.status().pid !== null);
    const status = supervisor.status();
    expect(status.restarts).toBe(1);
    expect(status.gaps).toHaveLength(1);
    expect(status.gaps[0]!.to_ms).toBeGreaterThanOrEqual(status.gaps[0]!.from_ms);
    expect(status.gaps[0]!.reason).toContain("SIGKILL");
    // Told twice: when it opened and when it closed.
    expect(gaps.map((gap) => gap.to_ms === null)).toEqual([true, false]);
    expect(alive(first)).toBe(false);
  });

  test("a probe that never gets ready is given up after a few tries, with its error", async () => {
    const { supervisor, failures } = supervise(`echo 'ERROR: permission denied' >&2; exit 1`, { maxFailedStarts: 3 });
    await until(() => supervisor.status().state === "failed");
    expect(failures).toHaveLength(1);
    expect(failures[0]).toContain("permission denied");
    expect(supervisor.status()).toMatchObject({ state: "failed", restarts: 2, pid: null });
  });

  test("a probe gone silent (no heartbeat) is killed and restarted", async () => {
    const { supervisor } = supervise(`echo '{"type":"ready","ts_ns":1}'; exec sleep 30`, { silenceMs: 500 });
    await until(() => supervisor.running);
    const first = supervisor.status().pid!;
    await until(() => supervisor.status().restarts === 1, 4_000);
    expect(alive(first)).toBe(false);
  });

  test("stop escalates SIGINT, SIGTERM, SIGKILL for a child that ignores the first two", async () => {
    const { supervisor } = supervise(`trap '' INT TERM; echo '{"type":"ready","ts_ns":1}'; while :; do sleep 0.1; done`);
    await until(() => supervisor.running);
    const pid = supervisor.status().pid!;
    const started = Date.now();
    await supervisor.stop();
    expect(alive(pid)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(600); // two steps of 300 ms were waited out
    expect(supervisor.status()).toMatchObject({ state: "stopped", pid: null });
  });
});
