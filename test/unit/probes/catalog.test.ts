import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { probeEnv } from "../../../src/events/monitor.ts";
import { PROBES, parseProbeHeader } from "../../../src/probes/catalog.ts";
import { bpftraceErrors } from "../../../src/probes/verify.ts";
import { ROOT } from "../../helpers.ts";

const probeFiles = readdirSync(join(ROOT, "probes")).filter((file) => file.endsWith(".bt"));

describe("the probe catalogue", () => {
  test("embeds every script in probes/, with its exact source", () => {
    expect(PROBES.map((probe) => `${probe.name}.bt`).sort()).toEqual(probeFiles.sort());
    for (const probe of PROBES) {
      expect(probe.source).toBe(readFileSync(join(ROOT, "probes", `${probe.name}.bt`), "utf8"));
    }
  });

  test("every probe header documents its tracepoints, kernel, overhead, fields and an example", () => {
    for (const probe of PROBES) {
      expect(probe.summary.length).toBeGreaterThan(10);
      expect(probe.tracepoints.length).toBeGreaterThan(0);
      expect(probe.kernel).not.toBe("");
      expect(probe.overhead).not.toBe("");
      expect(probe.source).toMatch(/\* Fields:/);
      expect(probe.source).toMatch(/\* Example:/);
      // Every tracepoint the header names is used, and every one used is named; a wildcard (one
      // that exists only on some architectures: sys_exit_accept*) is named by what it always matches.
      const used = [...new Set([...probe.source.matchAll(/^tracepoint:(\w+):(\w+\*?)/gm)].map((m) => `${m[1]}:${m[2]}`))];
      const matches = (pattern: string, name: string) => (pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : name === pattern);
      for (const pattern of used) expect(probe.tracepoints.filter((name) => matches(pattern, name))).not.toEqual([]);
      for (const name of probe.tracepoints) expect(used.filter((pattern) => matches(pattern, name))).not.toEqual([]);
    }
  });

  test("every probe says when it is attached, and prints a heartbeat so it dies of SIGPIPE when its reader is gone", () => {
    for (const probe of PROBES) {
      expect(probe.source).toMatch(/BEGIN\s*\{[^}]*\\"ready\\"/);
      expect(probe.source).toMatch(/interval:s:1\s*\{[^}]*\\"heartbeat\\"/);
    }
  });

  test("probes/README.md has one line for each probe", () => {
    const readme = readFileSync(join(ROOT, "probes", "README.md"), "utf8");
    for (const probe of PROBES) expect(readme).toContain(`\`${probe.name}\``);
  });

  test("parseProbeHeader reads continuation lines and refuses a probe without tracepoints", () => {
    const probe = parseProbeHeader("p", "/*\n * p - a probe\n *\n * Tracepoints: a:b,\n *   c:d\n * Overhead: low\n */\n");
    expect(probe.summary).toBe("a probe");
    expect(probe.tracepoints).toEqual(["a:b", "c:d"]);
    expect(probe.overhead).toBe("low");
    expect(() => parseProbeHeader("q", "/*\n * q - nothing\n */")).toThrow("lists no Tracepoints");
    expect(() => parseProbeHeader("r", "tracepoint:a:b {}")).toThrow("no header comment");
    expect(() => parseProbeHeader("s", "/*\n * Tracepoints: kprobe:tcp_connect\n */")).toThrow('bad tracepoint "kprobe:tcp_connect"');
  });
});

test("bpftraceErrors drops the harmless RLIMIT_MEMLOCK line and the attach banner", () => {
  const stderr =
    'ERROR: Unknown error -1: couldn\'t set RLIMIT_MEMLOCK for bpftrace. If your program is not loading, you can try "ulimit -l 8192" to fix the problem\n' +
    "Attaching 3 probes...\n/tmp/x.bt:1:1-24: ERROR: tracepoint not found: sched:nope\n";
  expect(bpftraceErrors(stderr)).toEqual(["/tmp/x.bt:1:1-24: ERROR: tracepoint not found: sched:nope"]);
});

describe("probeEnv (trace_connections sizes)", () => {
  test("2 CPUs: 4 MiB ring per CPU, 65536 keys", () => {
    expect(probeEnv(2)).toEqual({ BPFTRACE_MAP_KEYS_MAX: "65536", BPFTRACE_PERF_RB_PAGES: "1024" });
  });
  test("64 CPUs: the queue needs 2048 keys per CPU; the ring shrinks to keep 64 MiB in all", () => {
    expect(probeEnv(64)).toEqual({ BPFTRACE_MAP_KEYS_MAX: "131072", BPFTRACE_PERF_RB_PAGES: "256" });
  });
  test("ring pages are a power of two, at least 64", () => {
    expect(probeEnv(24).BPFTRACE_PERF_RB_PAGES).toBe("512");
    expect(probeEnv(1024).BPFTRACE_PERF_RB_PAGES).toBe("64");
  });
});
