import { describe, expect, test } from "bun:test";
import { completenessWarning, formatGeneric, formatResult, span } from "../../../src/client/format.ts";

// Shapes as real servers answer them (trimmed from captured answers).
const window = (seconds: number) => ({ since: new Date(Date.UTC(2026, 0, 1, 0, 0, 0)).toISOString(), until: new Date(Date.UTC(2026, 0, 1, 0, 0, seconds)).toISOString() });

const summary = {
  source: "ebpf",
  window: window(60),
  events: 36,
  sources: { ebpf: 36 },
  attempts: 5,
  established: 4,
  failed: { total: 1, by_reason: { refused: 1 } },
  udp_unix_connects: { total: 2, failed: 0 },
  accepted: 0,
  closed: 4,
  connect_latency_us: { samples: 4, avg: 43, p50: 40, p95: 60, max: 61 },
  top_destinations: [{ remote_ip: "93.184.216.34", remote_port: 443, attempts: 4, failed: 0 }, { remote_ip: "::1", remote_port: 1, attempts: 1, failed: 1 }],
  bytes: { sent: 1200, received: 53000 },
  processes: [{ pid: 4673, comm: "curl", path: "/usr/bin/curl", events: 6 }],
  processes_total: 1,
};

describe("results for people", () => {
  test("get_connection_summary answers in a sentence, then tables", () => {
    const text = formatResult("get_connection_summary", summary, { process: "curl", since: 60 });
    expect(text).toStartWith("Process 'curl' made 5 outbound connection attempts over the last 60 seconds: 4 established, 1 failed (refused 1).");
    expect(text).toContain("Connect latency: avg 43 µs, p50 40 µs, p95 60 µs, max 61 µs (4 samples).");
    expect(text).toMatch(/DESTINATION\s+ATTEMPTS\s+FAILED\n93\.184\.216\.34:443\s+4\s+0\n\[::1\]:1\s+1\s+1/);
    expect(text).toMatch(/4673\s+curl\s+6\s+\/usr\/bin\/curl/);
    expect(formatResult("get_connection_summary", summary, { pid: 4673 })).toStartWith("Process 4673 (curl) made 5");
    expect(formatResult("get_connection_summary", { ...summary, attempts: 1 }, {})).toStartWith("All processes made 1 outbound connection attempt over");
  });

  test("span says windows the way people do", () => {
    expect(span(0)).toBe("0 seconds");
    expect(span(0.505)).toBe("0.5 seconds");
    expect(span(1)).toBe("1 second");
    expect(span(90.4)).toBe("90 seconds");
    expect(span(60)).toBe("60 seconds");
    expect(span(600)).toBe("10 minutes");
    expect(span(3600)).toBe("hour");
    expect(span(7200)).toBe("2 hours");
  });

  test("events print one line each and a count; a background job says how to follow it", () => {
    const event = { wall_time: "2026-01-01T00:00:01.250Z", type: "connect", pid: 7, command: "curl", protocol: "tcp", destination_ip: "10.0.0.1", destination_port: 443, latency_us: 1500, source: "ebpf" };
    const text = formatResult("get_live_network_events", { source: "ebpf", started_at: "x", duration_s: 1, done: true, matched: 1, returned: 1, truncated: false, lost_events: 0, events: [event] });
    expect(text).toMatch(/^TIME\s+TYPE\s+PROCESS\[PID\]\s+DETAILS\n00:00:01\.250\s+connect\s+curl\[7\]\s+tcp\s+10\.0\.0\.1:443\s+1\.50 ms/);
    expect(text).toContain("1 of 1 matching event over 1 second from ebpf");
    const job = formatResult("get_tcp_health", { source: "ebpf", started_at: null, duration_s: 0, done: false, lost_events: 0, probe_restarts: 0, gaps: [], job_id: "job-3-x", totals: {}, connections: [], by_process: [], by_destination: [], truncated: false }, { background: true });
    expect(job).toContain("Started background job job-3-x");
    expect(job).toContain("ipcscope call get_capture_results --job-id job-3-x");
    // Read back before it has events, a capture is a capture still running, not a new job.
    const running = formatResult("get_capture_results", { source: "ebpf", started_at: "x", duration_s: 0, done: false, matched: 0, returned: 0, truncated: false, lost_events: 0, events: [], job_id: "job-4-y", kind: "get_live_network_events" });
    expect(running).toBe("0 of 0 matching events over 0 seconds from ebpf (job job-4-y, still running)");
  });

  test("an incomplete events answer is one warning line, its note; a complete one or another tool's answer none", () => {
    const note = "the probe was down for 3.2 s in this window (restart): events in that time are missing.";
    expect(completenessWarning({ ...summary, lost_events: 0, complete: false, note })).toBe(`warning: ${note}`);
    expect(completenessWarning({ ...summary, lost_events: 0, complete: true })).toBeNull();
    expect(completenessWarning({ total_drops: 3 })).toBeNull();
    expect(completenessWarning("text")).toBeNull();
    // The formatted answer does not say it again.
    expect(formatResult("get_connection_summary", { ...summary, lost_events: 0, complete: false, note })).not.toContain(note);
  });

  test("another tool's job read back through get_capture_results is shown as that tool", () => {
    const inner = { source: "ebpf: probe", started_at: "x", duration_s: 1, done: true, lost_events: 0, probe_restarts: 0, gaps: [], total_errors: 3, unattributed: 0, rows: [], by_syscall: [], by_errno: [], truncated: false };
    const text = formatResult("get_capture_results", { job_id: "job-1", kind: "trace_syscall_errors", done: true, result: inner });
    expect(text).toStartWith("job job-1 (trace_syscall_errors, done):\n3 failed system calls over 1 second.");
  });

  test("a result shaped unlike what the formatter knows falls back to the generic view", () => {
    expect(formatResult("get_connection_summary", { attempts: "many" })).toBe("attempts: many");
  });

  test("an unknown tool's result: scalars as key: value, nested objects flattened, lists of objects as tables", () => {
    const text = formatGeneric({
      name: "x",
      count: 2,
      flags: ["a", "b"],
      empty: [],
      limits: { max: 5, seen: null },
      rows: [{ pid: 1, comm: "sh", extra: { deep: true } }, { pid: 22, comm: "bash", note: "hi" }],
      report: "line one\nline two",
    });
    expect(text).toBe(
      [
        "name: x",
        "count: 2",
        "flags: a, b",
        "empty: none",
        "limits.max: 5",
        "limits.seen: -",
        "",
        "rows (2):",
        "PID  COMM  NOTE",
        "1    sh    -",
        "22   bash  hi",
        "",
        "report:",
        "line one",
        "line two",
      ].join("\n"),
    );
  });

  test("the mermaid flag prints the flowchart; the analysis prompt prints as it is", () => {
    expect(formatResult("get_ipc_graph", { mermaid: "flowchart LR\n  a --> b", nodes: [], edges: [] }, { mermaid: true })).toBe("flowchart LR\n  a --> b");
    expect(formatResult("generate_ipc_analysis_prompt", { prompt: "# Task\nExplain.", estimated_tokens: 3 })).toBe("# Task\nExplain.");
  });
});
