// connectionSummary and analyzePatterns on hand-made event sets whose answers were worked out by
// hand (in the comments): counts by type and reason, interpolated percentiles, destinations, bytes,
// processes with their program path; a 10 s ± 0.5 s beacon found, random intervals not; new listeners.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { analyzePatterns, connectionSummary, patternsSchema, summarySchema } from "../../../src/events/analysis.ts";
import { makeEvent, type ConnectionEvent } from "../../../src/events/model.ts";
import { EventStore } from "../../../src/events/store.ts";

const T0 = Math.floor((Date.now() - 2 * 60 * 60 * 1000) / 1000) * 1000;
const at = (seconds: number) => T0 + seconds * 1000;
const WINDOW = { sinceMs: at(0), untilMs: at(600) };

type Fields = Partial<ConnectionEvent>;
const tcp = (seconds: number, type: "connect" | "connect_failed" | "accept" | "close", pid: number, comm: string, remote: [string, number], fields: Fields = {}) =>
  makeEvent({ ts_ms: at(seconds), type, source: "ebpf", pid, comm, protocol: "tcp", family: "ipv4", local_ip: "10.0.0.5", local_port: 40000, remote_ip: remote[0], remote_port: remote[1], ...fields });
const udp = (seconds: number, pid: number, comm: string, remote: [string, number], returnCode: number, reason: string | null = null) =>
  makeEvent({ ts_ms: at(seconds), type: "connect", source: "ebpf", pid, comm, protocol: "udp", family: "ipv4", remote_ip: remote[0], remote_port: remote[1], return_code: returnCode, reason });

let store: EventStore;
beforeEach(() => {
  store = new EventStore({ flushMs: 3_600_000 });
});
afterEach(() => store.close());

describe("connectionSummary", () => {
  function curlMorning(): void {
    const add = (event: ConnectionEvent) => store.add(event);
    // pid 100 is curl, exec seen; pid 101 is a curl whose exec came before the history.
    add(makeEvent({ ts_ms: at(1), type: "exec", source: "ebpf", pid: 100, ppid: 1, comm: "curl", path: "/usr/bin/curl" }));
    add(tcp(2, "connect", 100, "curl", ["10.0.0.1", 443], { latency_us: 100 }));
    add(tcp(3, "connect", 100, "curl", ["10.0.0.1", 443], { latency_us: 200 }));
    add(tcp(4, "connect", 100, "curl", ["10.0.0.2", 80], { latency_us: 300 }));
    add(tcp(5, "connect", 101, "curl", ["10.0.0.1", 443], { latency_us: 400 }));
    add(tcp(6, "connect", 101, "curl", ["10.0.0.3", 8080], { latency_us: 1000 }));
    add(tcp(7, "connect_failed", 100, "curl", ["10.0.0.9", 443], { reason: "refused", latency_us: 50 }));
    add(tcp(8, "connect_failed", 101, "curl", ["10.0.0.9", 443], { reason: "refused" }));
    add(tcp(9, "connect_failed", 101, "curl", ["10.0.0.1", 443], { reason: "timeout", latency_us: 3_000_000 }));
    add(tcp(10, "connect_failed", 100, "curl", ["10.0.0.2", 80]));
    add(udp(11, 100, "curl", ["10.0.0.53", 53], 0));
    add(udp(12, 100, "curl", ["10.0.0.53", 53], -101, "ENETUNREACH"));
    add(makeEvent({ ts_ms: at(13), type: "connect", source: "ebpf", pid: 100, comm: "curl", protocol: "unix", family: "unix", path: "/run/nscd/socket", return_code: 0 }));
    add(tcp(14, "accept", 101, "curl", ["10.0.0.7", 50000], { local_port: 9000 }));
    add(tcp(15, "close", 100, "curl", ["10.0.0.1", 443], { bytes_sent: 1000, bytes_received: 5000, duration_ms: 12 }));
    add(tcp(16, "close", 100, "curl", ["10.0.0.2", 80], { bytes_sent: 500, duration_ms: 3 }));
    add(tcp(17, "close", 101, "curl", ["10.0.0.3", 8080], { source: "ss-poll" }));
    add(makeEvent({ ts_ms: at(500), type: "exit", source: "ebpf", pid: 100, comm: "curl", exit_code: 0 }));
    // Not curl, or not in the window.
    add(tcp(20, "connect", 200, "wget", ["10.0.0.1", 443], { latency_us: 9 }));
    add(tcp(-1, "connect", 100, "curl", ["10.0.0.1", 443], { latency_us: 9 }));
    add(tcp(601, "connect_failed", 101, "curl", ["10.0.0.1", 443], { reason: "refused" }));
    store.flush();
  }

  test("counts, reasons, interpolated latency percentiles, destinations, bytes and processes of a command", () => {
    curlMorning();
    const summary = connectionSummary(store, { command: "curl", ...WINDOW });
    expect(summarySchema.parse(summary)).toEqual(summary);
    expect(summary).toEqual({
      window: { since: new Date(at(0)).toISOString(), until: new Date(at(600)).toISOString() },
      // 18 curl events in the window, one of them from ss polling.
      events: 18,
      sources: { ebpf: 17, "ss-poll": 1 },
      // TCP: 5 established + 4 failed.
      attempts: 9,
      established: 5,
      failed: { total: 4, by_reason: { refused: 2, timeout: 1, unknown: 1 } },
      // Two UDP connects (one failed) and one Unix connect.
      udp_unix_connects: { total: 3, failed: 1 },
      accepted: 1,
      closed: 3,
      // Established only: 100, 200, 300, 400, 1000 µs. avg 2000/5 = 400; p50 the middle one, 300;
      // p95 at rank 0.95 × 4 = 3.8: 400 + 0.8 × (1000 − 400) = 880.
      connect_latency_us: { samples: 5, avg: 400, p50: 300, p95: 880, max: 1000 },
      // Attempts (TCP connect/connect_failed and UDP connects) per ip:port; most first, then most failed, then by address.
      top_destinations: [
        { remote_ip: "10.0.0.1", remote_port: 443, attempts: 4, failed: 1 },
        { remote_ip: "10.0.0.9", remote_port: 443, attempts: 2, failed: 2 },
        { remote_ip: "10.0.0.2", remote_port: 80, attempts: 2, failed: 1 },
        { remote_ip: "10.0.0.53", remote_port: 53, attempts: 2, failed: 1 },
        { remote_ip: "10.0.0.3", remote_port: 8080, attempts: 1, failed: 0 },
      ],
      // Closes: sent 1000 + 500; received 5000 (the others did not say).
      bytes: { sent: 1500, received: 5000 },
      // pid 100: exec, 3 connects, 2 failed, 2 UDP, 1 Unix, 2 closes, exit = 12; pid 101: 2 + 2 + accept + close = 6.
      processes: [
        { pid: 100, comm: "curl", path: "/usr/bin/curl", events: 12 },
        { pid: 101, comm: "curl", path: null, events: 6 },
      ],
      processes_total: 2,
    });
  });

  test("by pid, and an empty window gives zeros and no latency", () => {
    curlMorning();
    const one = connectionSummary(store, { pid: 101, ...WINDOW });
    expect(one).toMatchObject({
      events: 6,
      attempts: 4,
      established: 2,
      failed: { total: 2, by_reason: { refused: 1, timeout: 1 } },
      // 400 and 1000: p50 700, p95 400 + 0.95 × 600 = 970.
      connect_latency_us: { samples: 2, avg: 700, p50: 700, p95: 970, max: 1000 },
      bytes: { sent: 0, received: 0 },
      processes: [{ pid: 101, comm: "curl", path: null, events: 6 }],
    });
    const none = connectionSummary(store, { command: "curl", sinceMs: at(1000), untilMs: at(2000) });
    expect(none).toMatchObject({ events: 0, attempts: 0, connect_latency_us: null, top_destinations: [], processes: [], processes_total: 0, sources: {} });
    expect(connectionSummary(store, { command: "no-such-program", ...WINDOW }).events).toBe(0);
  });

  test("a command found by its program path only: a process whose threads have other names", () => {
    store.add(makeEvent({ ts_ms: at(1), type: "exec", source: "ebpf", pid: 300, comm: "java", path: "/opt/elasticsearch/jdk/bin/java" }));
    store.add(tcp(2, "connect", 300, "elasticsearch[n", ["10.0.0.8", 9300], { latency_us: 120 }));
    store.add(makeEvent({ ts_ms: at(3), type: "exit", source: "ebpf", pid: 300, comm: "java", exit_code: 0 }));
    store.flush();
    expect(connectionSummary(store, { command: "/opt/elasticsearch", ...WINDOW })).toMatchObject({
      events: 3,
      established: 1,
      processes: [
        { pid: 300, comm: "java", path: "/opt/elasticsearch/jdk/bin/java", events: 2 },
        { pid: 300, comm: "elasticsearch[n", path: "/opt/elasticsearch/jdk/bin/java", events: 1 },
      ],
    });
  });
});

describe("analyzePatterns", () => {
  function busyHour(): void {
    // A beacon: 31 connects, gaps alternating 9.5 s and 10.5 s (10 s ± 0.5 s): mean 10 s, deviation 0.5 s, CV 0.05.
    let t = 5;
    for (let i = 0; i <= 30; i++) {
      store.add(tcp(t, "connect", 300, "updater", ["203.0.113.7", 443], { latency_us: 900 }));
      t += i % 2 === 0 ? 9.5 : 10.5;
    }
    // Irregular: gaps from 1 s to 55 s.
    t = 7;
    for (const gap of [2, 40, 7, 25, 1, 55, 12, 3, 30, 18, 9, 44]) {
      store.add(tcp(t, "connect", 301, "firefox", ["198.51.100.1", 443]));
      t += gap;
    }
    // Regular, but only 4 connects: too few to call it periodic.
    for (let i = 0; i < 4; i++) store.add(tcp(100 + i * 60, "connect", 302, "chronyc", ["192.0.2.1", 123]));
    // A scan: 20 destinations, 15 refused.
    for (let i = 0; i < 20; i++) {
      store.add(tcp(200 + i, i < 15 ? "connect_failed" : "connect", 303, "nmap", [`10.9.0.${i + 1}`, 22], i < 15 ? { reason: "refused" } : {}));
    }
    store.add(udp(300, 301, "firefox", ["10.0.0.53", 53], 0));
    store.add(udp(301, 301, "firefox", ["10.0.0.53", 53], -111, "ECONNREFUSED"));
    store.add(makeEvent({ ts_ms: at(302), type: "connect", source: "ebpf", pid: 301, comm: "firefox", protocol: "unix", family: "unix", path: "/run/user/1000/bus", return_code: 0 }));
    store.add(tcp(303, "accept", 10, "sshd", ["10.0.0.9", 50123], { local_port: 22 }));
    // Listeners: one before the window (not new), two in it.
    store.add(makeEvent({ ts_ms: at(-100), type: "listen", source: "ebpf", pid: 10, comm: "sshd", protocol: "tcp", local_ip: "0.0.0.0", local_port: 22 }));
    store.add(makeEvent({ ts_ms: at(400), type: "listen", source: "ebpf", pid: 400, comm: "nc", protocol: "tcp", local_ip: "0.0.0.0", local_port: 4444 }));
    store.add(makeEvent({ ts_ms: at(410), type: "listen", source: "ss-poll", pid: 401, comm: "python3", protocol: "tcp", local_ip: "127.0.0.1", local_port: 8000 }));
    store.flush();
  }

  test("finds the beacon, not the irregular or too-short series, and reports the new listeners", () => {
    busyHour();
    const patterns = analyzePatterns(store, { sinceMs: at(0), untilMs: at(3600) });
    expect(patternsSchema.parse(patterns)).toEqual(patterns);
    expect(patterns.periodic).toEqual([{ comm: "updater", remote_ip: "203.0.113.7", remote_port: 443, count: 31, interval_s_avg: 10, jitter_cv: 0.05 }]);
    expect(patterns.new_listeners).toEqual([
      { pid: 400, comm: "nc", local_ip: "0.0.0.0", local_port: 4444, ts: new Date(at(400)).toISOString() },
      { pid: 401, comm: "python3", local_ip: "127.0.0.1", local_port: 8000, ts: new Date(at(410)).toISOString() },
    ]);
    expect(patterns.new_listeners_total).toBe(2);
  });

  test("destinations, protocol mix, fan-out and failure rates", () => {
    busyHour();
    const patterns = analyzePatterns(store, { sinceMs: at(0), untilMs: at(3600) });
    // 31 + 12 + 4 + 20 + 2 UDP + 1 Unix + 1 accept + 2 listens = 73 events; one from ss polling.
    expect(patterns.events).toBe(73);
    expect(patterns.sources).toEqual({ ebpf: 72, "ss-poll": 1 });
    expect(patterns.top_destinations.slice(0, 4)).toEqual([
      { remote_ip: "203.0.113.7", remote_port: 443, count: 31, processes: 1 },
      { remote_ip: "198.51.100.1", remote_port: 443, count: 12, processes: 1 },
      { remote_ip: "192.0.2.1", remote_port: 123, count: 4, processes: 1 },
      { remote_ip: "10.0.0.53", remote_port: 53, count: 2, processes: 1 },
    ]);
    expect(patterns.top_destinations).toHaveLength(10);
    // TCP: 31 + 12 + 4 + 20 + 1 accept = 68; UDP 2; Unix 1 (listens are not connections).
    expect(patterns.protocol_mix).toEqual({ tcp: 68, udp: 2, unix: 1 });
    expect(patterns.fan_out).toEqual([
      { pid: 303, comm: "nmap", destinations: 20, attempts: 20 },
      // 198.51.100.1:443, 10.0.0.53:53 and the bus socket.
      { pid: 301, comm: "firefox", destinations: 3, attempts: 15 },
      { pid: 300, comm: "updater", destinations: 1, attempts: 31 },
      { pid: 302, comm: "chronyc", destinations: 1, attempts: 4 },
    ]);
    expect(patterns.failure_rates).toEqual([
      { pid: 303, comm: "nmap", attempts: 20, failed: 15, rate: 0.75 },
      { pid: 301, comm: "firefox", attempts: 15, failed: 1, rate: 0.067 },
    ]);
  });

  test("a pid or command narrows every pattern", () => {
    busyHour();
    const nmap = analyzePatterns(store, { command: "NMAP", sinceMs: at(0), untilMs: at(3600) });
    expect(nmap.events).toBe(20);
    expect(nmap.fan_out.map((row) => row.comm)).toEqual(["nmap"]);
    expect(nmap.periodic).toEqual([]);
    expect(nmap.new_listeners).toEqual([]);
    const empty = analyzePatterns(store, { pid: 999, sinceMs: at(0) });
    expect(empty).toMatchObject({ events: 0, top_destinations: [], protocol_mix: { tcp: 0, udp: 0, unix: 0 }, periodic: [] });
  });
});
