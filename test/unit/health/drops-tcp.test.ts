// The pure parts of the drop and TCP health tools, on real inputs: tracepoint format files read off
// this machine's 6.18 kernel (test/fixtures/tracefs) and map keys as bpftrace -f json printed them.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { reasonName, rewriteForKernel, summarizeDrops, type DropNaming } from "../../../src/health/drops.ts";
import { hasField, SocketOwners, symbolicNames } from "../../../src/health/kernel.ts";
import { parseTcpKey, summarizeTcp } from "../../../src/health/tcp.ts";
import { ROOT } from "../../helpers.ts";

const fixture = (name: string) => readFileSync(join(ROOT, "test", "fixtures", "tracefs", name), "utf8");
const kfree = fixture("skb-kfree_skb-6.18.format");

describe("tracepoint formats", () => {
  test("fields are found by name, not by substring", () => {
    expect(hasField(kfree, "reason")).toBe(true);
    expect(hasField(kfree, "skbaddr")).toBe(true);
    expect(hasField(kfree, "addr")).toBe(false);
    expect(hasField(fixture("tcp-tcp_send_reset-6.18.format"), "saddr")).toBe(true);
    expect(hasField(fixture("tcp-tcp_send_reset-6.18.format"), "sport")).toBe(false);
  });
  test("drop reason names come from __print_symbolic", () => {
    const names = symbolicNames(kfree, "reason");
    expect(names.get(2)).toBe("NOT_SPECIFIED");
    expect(names.get(3)).toBe("NO_SOCKET");
    expect(names.get(12)).toBe("NETFILTER_DROP");
    expect(names.get(104)).toBe("QUEUE_PURGE");
    expect(names.size).toBeGreaterThan(100);
    expect(symbolicNames(kfree, "nosuchfield").size).toBe(0);
  });
  test("a kernel without reasons gets the probe rewritten and says so", () => {
    const without = { reasons: false, names: new Map<number, string>() };
    expect(rewriteForKernel(without)!("x = args->reason; y = args->reason;")).toBe("x = 0; y = 0;");
    expect(rewriteForKernel({ reasons: true, names: new Map() })).toBeUndefined();
    expect(reasonName(0, without)).toContain("no reason");
  });
});

const noOwners = { get: () => undefined } as unknown as SocketOwners;

describe("summarizeDrops", () => {
  const naming: DropNaming = {
    kernel: { reasons: true, names: symbolicNames(kfree, "reason") },
    interfaces: new Map([[1, "lo"]]),
    owners: { get: (inode: number) => (inode === 77 ? { pid: 4242, command: "curl" } : undefined) } as unknown as SocketOwners,
  };
  // Real keys from a run with an iptables DROP on 47001 (plus two made-up rows for the socket and the cut).
  const counts = new Map([
    ["12,2048,6,1,47001,0", 2],
    ["104,0,0,0,0,0", 4],
    ["3,2048,17,1,53,77", 1],
  ]);
  test("groups by reason, interface, port and process, most first", () => {
    const summary = summarizeDrops(counts, 7, naming, 2, 50);
    expect(summary.total_drops).toBe(7);
    expect(summary.by_reason).toEqual([
      { reason: "QUEUE_PURGE", code: 104, drops: 4 },
      { reason: "NETFILTER_DROP", code: 12, drops: 2 },
      { reason: "NO_SOCKET", code: 3, drops: 1 },
    ]);
    expect(summary.by_interface).toEqual([
      { interface: "none", ifindex: 0, drops: 4 },
      { interface: "lo", ifindex: 1, drops: 3 },
    ]);
    expect(summary.by_port).toEqual([
      { protocol: "tcp", port: 47001, drops: 2 },
      { protocol: "udp", port: 53, drops: 1 },
    ]);
    expect(summary.by_process).toEqual([{ pid: 4242, command: "curl", socket_inode: 77, drops: 1 }]);
    expect(summary.rows[1]).toEqual({ reason: "NETFILTER_DROP", network: "ipv4", protocol: "tcp", interface: "lo", dport: 47001, pid: null, command: null, drops: 2, per_second: 1 });
    expect(summary.truncated).toBe(false);
  });
  test("a cut and drops beyond the map's keys are said", () => {
    const summary = summarizeDrops(counts, 10, naming, 2, 1);
    expect(summary.rows).toHaveLength(1);
    expect(summary.truncated).toBe(true);
    expect(summary.total_drops).toBe(10);
    expect(summary.note).toContain("3 drop(s) did not fit");
  });
});

describe("TCP health", () => {
  test("map keys as bpftrace prints them", () => {
    expect(parseTcpKey("tracepoint:tcp:tcp_receive_reset,6,::1,51900,::1,47003,67457012,2")).toEqual({
      kind: "resets_received", family: 6, laddr: "::1", lport: 51900, raddr: "::1", rport: 47003, inode: 67457012, state: 2,
    });
    expect(parseTcpKey("tracepoint:tcp:tcp_send_reset,4,127.0.0.1,47002,127.0.0.1,48442,0,0")?.kind).toBe("resets_sent");
    expect(parseTcpKey("tracepoint:tcp:tcp_other,4,a,1,b,2,0,0")).toBeNull();
    expect(parseTcpKey("garbage")).toBeNull();
  });
  const map = new Map([
    ["tracepoint:tcp:tcp_retransmit_skb,4,10.231.0.1,40312,10.231.0.2,5201,900,1", 30],
    ["tracepoint:tcp:tcp_retransmit_skb,4,10.231.0.1,40312,10.231.0.2,5201,900,4", 2],
    ["tracepoint:tcp:tcp_send_reset,4,127.0.0.1,47002,127.0.0.1,48442,0,0", 1],
    ["tracepoint:tcp:tcp_receive_reset,6,::1,51900,::1,47003,901,2", 1],
  ]);
  const owners = { get: (inode: number) => (inode === 900 ? { pid: 10, command: "iperf3" } : undefined) } as unknown as SocketOwners;
  test("one row per connection, rolled up per process and destination, with rates", () => {
    const health = summarizeTcp(map, owners, 4, { port: null, pid: null, remote: null }, 50);
    expect(health.totals).toEqual({ retransmits: 32, resets_sent: 1, resets_received: 1, retransmits_per_second: 8, resets_per_second: 0.5 });
    expect(health.connections[0]).toMatchObject({ local: "10.231.0.1:40312", remote: "10.231.0.2:5201", pid: 10, command: "iperf3", retransmits: 32, retransmits_per_second: 8 });
    expect(health.connections.find((c) => c.remote === "[::1]:47003")).toMatchObject({ state: "SYN_SENT", pid: null, command: "(socket closed)", resets_received: 1 });
    expect(health.connections.find((c) => c.local === "127.0.0.1:47002")).toMatchObject({ state: "no socket", command: null, resets_sent: 1 });
    expect(health.by_process[0]).toMatchObject({ pid: 10, command: "iperf3", connections: 1, retransmits: 32 });
    expect(health.by_destination[0]).toMatchObject({ remote: "10.231.0.2:5201", retransmits: 32 });
  });
  test("filters by pid and remote address", () => {
    expect(summarizeTcp(map, owners, 4, { port: null, pid: 10, remote: null }, 50).connections).toHaveLength(1);
    expect(summarizeTcp(map, noOwners, 4, { port: null, pid: null, remote: (ip) => ip === "::1" }, 50).connections).toHaveLength(1);
  });
});
