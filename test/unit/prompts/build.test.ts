// The analysis prompt without I/O: sections from a constructed host (real buildSnapshot and
// buildIpcGraph over it), focus parsing, /proc/net/snmp parsing, and the budget cut.
import { describe, expect, test } from "bun:test";
import type { ConnectionPatterns, ConnectionSummary } from "../../../src/events/analysis.ts";
import {
  buildPrompt,
  buildSections,
  estimateTokens,
  eventLines,
  fitToBudget,
  isExposed,
  listenerLines,
  parseFocus,
  parseNetSnmp,
  type PromptMaterial,
  type Section,
} from "../../../src/prompts/build.ts";
import { buildSnapshot } from "../../../src/snapshot/build.ts";
import type { HostSocket, HostSockets } from "../../../src/snapshot/collect.ts";
import { buildIpcGraph } from "../../../src/snapshot/graph.ts";
import type { ProcessInfo } from "../../../src/snapshot/proc.ts";

const NETNS = 4026531840;

function processInfo(pid: number, name: string, uid = 0): ProcessInfo {
  return {
    pid, ppid: 1, name, uid, user: uid === 0 ? "root" : String(uid), cmdline: [`/usr/sbin/${name}`], command_line: `/usr/sbin/${name}`,
    cgroup: `/system.slice/${name}.service`, unit: `${name}.service`, container: null, netns: NETNS, start_time_ticks: 1,
  };
}

function tcp(pid: number, inode: number, state: string, local: [string, number], peer: [string, number | null]): HostSocket {
  return {
    transport: "tcp", netid: "tcp", state, recv_q: 0, send_q: 0,
    local: { address: local[0], port: local[1], scope: null },
    peer: { address: peer[0], port: peer[1], scope: null },
    inode, peer_inode: null, uid: null, processes: [], timer: null, cgroup: null,
    netns: NETNS, owners: [{ pid, fd: 3 }],
  };
}

/** sshd (root) on 0.0.0.0:22, a web app (uid 1000) on 127.0.0.1:8080 used by a local client, and n outbound connections of a worker. */
function host(outbound = 3): HostSockets {
  const processes = new Map<number, ProcessInfo>([
    [10, processInfo(10, "sshd")],
    [20, processInfo(20, "webapp", 1000)],
    [30, processInfo(30, "client", 1000)],
    [40, processInfo(40, "worker", 1000)],
  ]);
  const sockets: HostSocket[] = [
    tcp(10, 1, "LISTEN", ["0.0.0.0", 22], ["0.0.0.0", null]),
    tcp(20, 2, "LISTEN", ["127.0.0.1", 8080], ["0.0.0.0", null]),
    tcp(20, 3, "ESTAB", ["127.0.0.1", 8080], ["127.0.0.1", 50000]),
    tcp(30, 4, "ESTAB", ["127.0.0.1", 50000], ["127.0.0.1", 8080]),
  ];
  for (let i = 0; i < outbound; i++) sockets.push(tcp(40, 100 + i, "ESTAB", ["10.0.0.5", 40000 + i], [`203.0.113.${i % 250}`, 45678]));
  return { sockets, processes, namespaces: [], warnings: [], elapsedMs: 1 };
}

const summary: ConnectionSummary = {
  window: { since: "a", until: "b" }, events: 40, sources: { ebpf: 40 }, attempts: 12, established: 10,
  failed: { total: 2, by_reason: { refused: 2 } }, udp_unix_connects: { total: 0, failed: 0 }, accepted: 5, closed: 3,
  connect_latency_us: null, top_destinations: [], bytes: { sent: 0, received: 0 }, processes: [], processes_total: 0,
};
const patterns: ConnectionPatterns = {
  window: { since: "a", until: "b" }, events: 40, sources: { ebpf: 40 },
  top_destinations: [{ remote_ip: "198.51.100.7", remote_port: 4444, count: 10, processes: 1 }],
  protocol_mix: { tcp: 12, udp: 0, unix: 0 }, fan_out: [], failure_rates: [{ pid: 40, comm: "worker", attempts: 12, failed: 2, rate: 0.17 }],
  periodic: [{ comm: "worker", remote_ip: "198.51.100.7", remote_port: 4444, count: 10, interval_s_avg: 30, jitter_cv: 0.01 }],
  new_listeners: [], new_listeners_total: 0,
};

function material(outbound = 3, withEvents = true): PromptMaterial {
  const h = host(outbound);
  return {
    hostname: "web1", kernel: "5.14.0", taken_at: "2025-01-01T00:00:00.000Z",
    listeners: buildSnapshot(h, { listening: true, limit: 2000 }),
    sockets: buildSnapshot(h, { limit: 2000 }),
    graph: buildIpcGraph(h),
    events: withEvents
      ? { available: true, source: "ebpf", window_s: 3600, store_events: 99, completeness: { lost_events: 0, complete: true }, summary, patterns, focus_events: [] }
      : { available: false, reason: "the connection monitor is not running" },
    snmp: { Tcp: { ActiveOpens: 5, PassiveOpens: 6, AttemptFails: 1, EstabResets: 0, CurrEstab: 3, InSegs: 100, OutSegs: 200, RetransSegs: 4, InErrs: 0, OutRsts: 2 } },
    interfaces: [{ name: "eth0", rx_bytes: 2e6, tx_bytes: 1e6, rx_errors: 0, tx_errors: 0, rx_dropped: 7, tx_dropped: 0 }],
    focus: null,
  };
}

describe("parseFocus", () => {
  test("takes prefixes, a bare number as pid and port, and anything else as a command", () => {
    expect(parseFocus("pid:42")).toEqual({ pid: 42, label: "pid:42" });
    expect(parseFocus("port=8080")).toEqual({ port: 8080, label: "port=8080" });
    expect(parseFocus("command:nginx")).toEqual({ command: "nginx", label: "command:nginx" });
    expect(parseFocus("443")).toEqual({ pid: 443, port: 443, label: "443" });
    expect(parseFocus("70000")).toEqual({ pid: 70000, label: "70000" });
    expect(parseFocus("postgres")).toEqual({ command: "postgres", label: "postgres" });
  });

  test("refuses a port or pid that is not a number, naming it", () => {
    expect(() => parseFocus("port:http")).toThrow('focus: port must be a number, got "http"');
    expect(() => parseFocus("port:70000")).toThrow("port must be a number");
  });
});

describe("parseNetSnmp", () => {
  test("pairs each protocol's header line with its value line", () => {
    const text = [
      "Ip: Forwarding DefaultTTL",
      "Ip: 1 64",
      "Tcp: RtoAlgorithm ActiveOpens RetransSegs InErrs MaxConn",
      "Tcp: 1 36743772 1581 0 -1",
      "Udp: InDatagrams NoPorts",
      "Udp: 113 0",
    ].join("\n");
    expect(parseNetSnmp(text)).toEqual({
      Ip: { Forwarding: 1, DefaultTTL: 64 },
      Tcp: { RtoAlgorithm: 1, ActiveOpens: 36743772, RetransSegs: 1581, InErrs: 0, MaxConn: -1 },
      Udp: { InDatagrams: 113, NoPorts: 0 },
    });
  });
});

describe("sections", () => {
  test("listeners: exposed first, a root one marked, loopback ones said so", () => {
    const lines = listenerLines(material().listeners);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe("- TCP 0.0.0.0:22 [ssh] EXPOSED (non-loopback), ROOT ON NETWORK: sshd(10) user root unit sshd.service");
    expect(lines[1]).toContain("127.0.0.1:8080");
    expect(lines[1]).toContain("loopback only: webapp(20) user 1000");
    expect(isExposed("[::]:22")).toBe(true);
    expect(isExposed("[::1]:631")).toBe(false);
    expect(isExposed("[::ffff:127.0.0.1]:80")).toBe(false);
  });

  test("every section has its facts: outbound destinations, the local edge, beaconing, kernel counters", () => {
    const text = buildPrompt(material(), "security_review", 4000).prompt;
    expect(text).toContain("# Task (security_review)");
    expect(text).toContain("outbound to TCP 203.0.113.0:45678 [unknown service port] x1 from worker(40)");
    expect(text).toContain("- client(30) -> webapp(20) tcp 8080");
    expect(text).toContain("PERIODIC (beaconing?): worker -> 198.51.100.7:4444 x10 every 30 s");
    expect(text).toContain("failed (refused 2)");
    expect(text).toContain("RetransSegs 4 (2.000% of OutSegs 200)");
    expect(text).toContain("eth0: rx 2.0 MB, tx 1.0 MB, errors rx 0/tx 0, dropped rx 7/tx 0");
  });

  test("the events section states lost_events and complete, and the note when incomplete", () => {
    expect(buildPrompt(material(), "analysis", 4000).prompt).toContain("Completeness: lost_events 0, complete true.");
    const m = material();
    const note = "12,400 event lines were lost in this window; totals and details undercount.";
    if (m.events.available) m.events.completeness = { lost_events: 12_400, complete: false, note };
    const lines = eventLines(m.events);
    expect(lines[1]).toBe(`Completeness: lost_events 12,400, complete false: ${note}`);
  });

  test("without a running monitor the events section says there is no event history", () => {
    expect(buildPrompt(material(3, false), "analysis", 4000).prompt).toContain("No event history: the connection monitor is not running.");
  });

  test("a focus comes first, with its sockets and local edges", () => {
    const m = material();
    const webapp = m.sockets.process_connections.filter((p) => p.pid === 20);
    m.focus = { focus: parseFocus("port:8080"), processes: webapp };
    const sections = buildSections(m, "connection_troubleshooting");
    expect(sections[0]!.name).toBe("focus");
    const text = buildPrompt(m, "connection_troubleshooting", 4000).prompt;
    expect(text.indexOf("## Focus: port:8080")).toBeLessThan(text.indexOf("## Listening sockets"));
    expect(text).toContain("  - TCP 127.0.0.1:8080 -> 0.0.0.0:* LISTEN listen");
    expect(text).toContain("- local edge: client(30) -> webapp(20) tcp 8080 x1");
  });

  test("connection_troubleshooting without a focus says none was given", () => {
    expect(buildPrompt(material(), "connection_troubleshooting", 4000).prompt).toContain("No process or port was given");
  });
});

describe("fitToBudget", () => {
  const section = (name: string, priority: number, n: number, minLines = 2): Section => ({
    name, title: name, priority, minLines, lines: Array.from({ length: n }, (_, i) => `- ${name} line ${i} ${"x".repeat(60)}`),
  });

  test("under budget everything is complete and the estimate is characters/4", () => {
    const fitted = fitToBudget("# head\n\n", [section("a", 2, 3), section("b", 1, 3)], 4000);
    expect(fitted.truncated).toBe(false);
    expect(fitted.sections.map((s) => s.status)).toEqual(["complete", "complete"]);
    expect(fitted.estimated_tokens).toBe(estimateTokens(fitted.prompt));
    expect(fitted.prompt).toContain(`(~${fitted.estimated_tokens} tokens, estimated as characters/4, budget 4000)`);
  });

  test("over budget the lowest priority is shortened, then dropped, before a higher one is touched", () => {
    const sections = [section("high", 3, 40), section("mid", 2, 40), section("low", 1, 40)];
    for (const budget of [300, 600, 900, 1200, 1800, 2300]) {
      const fitted = fitToBudget("# head\n\n", sections, budget);
      expect(fitted.estimated_tokens).toBeLessThanOrEqual(budget);
      expect(fitted.truncated).toBe(true);
      const [high, mid, low] = fitted.sections;
      if (mid!.status !== "complete") expect(low!.status).toBe("dropped");
      if (high!.status !== "complete") expect(mid!.status).toBe("dropped");
      expect(high!.status).not.toBe("dropped");
    }
    const cut = fitToBudget("# head\n\n", sections, 2300);
    expect(cut.sections.map((s) => s.status)).toEqual(["complete", "complete", "cut"]);
    expect(cut.sections[2]!.lines_kept).toBeGreaterThanOrEqual(2);
    expect(cut.prompt).toContain("more lines cut to fit the token budget");
    const tight = fitToBudget("# head\n\n", sections, 1200);
    expect(tight.sections[0]).toEqual({ name: "high", status: "complete", lines_kept: 40, lines_total: 40 });
    expect(tight.sections.map((s) => s.status)).toEqual(["complete", "cut", "dropped"]);
    expect(tight.prompt).not.toContain("- low line");
    expect(tight.prompt).toMatch(/cut to fit: mid, low\)\n$/);
  });

  test("a real prompt with 5000 outbound connections fits 1000 tokens and keeps the listeners", () => {
    const fitted = buildPrompt(material(5000), "analysis", 1000);
    expect(fitted.estimated_tokens).toBeLessThanOrEqual(1000);
    expect(fitted.truncated).toBe(true);
    expect(fitted.prompt).toContain("0.0.0.0:22");
    expect(fitted.sections.find((s) => s.name === "listeners")!.status).toBe("complete");
  });

  test("a header larger than the budget is cut mid-text and still within it", () => {
    const fitted = fitToBudget(`# ${"h".repeat(5000)}\n`, [section("a", 1, 3)], 300);
    expect(fitted.estimated_tokens).toBeLessThanOrEqual(300);
    expect(fitted.truncated).toBe(true);
    expect(fitted.prompt).toContain("(cut to fit the token budget)");
  });
});
