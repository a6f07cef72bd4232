// The probe window on real child processes that print what `bpftrace -f json` prints: maps summed
// across a restart (and the final maps of END read before stop() returns), samples capped, a probe
// that cannot start, and a window stopped while the probe was still "compiling".
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { ProbeWindow } from "../../../src/health/window.ts";

const ready = `printf '%s\\n' '{"type": "printf", "data": "{\\"type\\":\\"ready\\",\\"ts_ns\\":1}\\n"}'`;
const beat = `printf '%s\\n' '{"type": "printf", "data": "{\\"type\\":\\"heartbeat\\",\\"ts_ns\\":2}\\n"}'`;
const map = (data: Record<string, number>) => `printf '%s\\n' '${JSON.stringify({ type: "map", data: { "@m": data } })}'`;
const sample = (n: number) => `printf '%s\\n' '{"type": "printf", "data": "{\\"type\\":\\"s\\",\\"n\\":${n}}\\n"}'`;
const fake = (script: string) => () => ["/bin/sh", "-c", script, "fake-probe"];
const sampleSchema = z.object({ type: z.literal("s"), n: z.number() });

describe("ProbeWindow", () => {
  test("sums a map over a restart, reads END's maps, caps samples", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ipcscope-window-"));
    const marker = join(dir, "second-run");
    // First run: counts a:5, then dies. Second run: counts a:2 b:1 until stopped; its "END" prints a:3 b:1.
    // (The supervisor's SIGINT comes first, but sh cannot trap it: the wrapper starts the probe as a
    // background job, which has SIGINT ignored. bpftrace installs its own handler; here SIGTERM, 2 s later, does.)
    const script = [
      `if [ ! -e ${marker} ]; then touch ${marker}; ${ready}; ${map({ "a,1": 2 })}; ${map({ "a,1": 5 })}; ${sample(1)}; ${sample(2)}; ${sample(3)}; exit 1; fi`,
      `trap '${map({ "a,1": 3, "b,2": 1 }).replace(/'/g, "'\\''")}; exit 0' TERM`,
      `${ready}; ${map({ "a,1": 2, "b,2": 1 })}`,
      `while :; do ${beat}; sleep 0.2; done`,
    ].join("\n");
    const window = new ProbeWindow({ probe: "trace_drops", durationS: 30, sample: sampleSchema, maxSamples: 2, command: fake(script) });
    try {
      await window.start();
      for (let i = 0; i < 100 && window.fields().probe_restarts === 0; i++) await Bun.sleep(50);
      for (let i = 0; i < 100 && !window.counts("@m").has("b,2"); i++) await Bun.sleep(50);
      expect(window.fields().probe_restarts).toBe(1);
      expect(window.fields().gaps).toHaveLength(1);
      expect(Object.fromEntries(window.counts("@m"))).toEqual({ "a,1": 7, "b,2": 1 });
      await window.stop();
      expect(window.done).toBe(true);
      expect(Object.fromEntries(window.counts("@m"))).toEqual({ "a,1": 8, "b,2": 1 });
      expect(window.samplesSeen).toBe(3);
      expect(window.samples).toEqual([{ type: "s", n: 1 }, { type: "s", n: 2 }]);
    } finally {
      await window.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 20_000);

  test("a probe that cannot start is a tool error with its reason", async () => {
    const window = new ProbeWindow({ probe: "trace_drops", durationS: 5, command: fake("echo 'ERROR: no such tracepoint' >&2; exit 1") });
    await expect(window.start()).rejects.toThrow(/probe trace_drops could not run: .*no such tracepoint/);
    expect(window.done).toBe(true);
    expect(window.fields().error).toContain("no such tracepoint");
  });

  test("stopped while still compiling: start() gives up at once", async () => {
    const window = new ProbeWindow({ probe: "trace_drops", durationS: 5, command: fake("exec sleep 30") });
    const started = window.start();
    await Bun.sleep(200);
    const t0 = Date.now();
    await window.stop();
    await expect(started).rejects.toThrow("was stopped before it attached");
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(window.fields().started_at).toBeNull();
  });
});
