import { describe, expect, test } from "bun:test";
import { decodeCountKey, decodeTotalKey, KernelCounts, OTHER, type CountMap } from "../../../src/events/counts.ts";
import { formatIpBytes } from "../../../src/snapshot/cidr.ts";

/** A key of @cnt as bpftrace lays it out: u64 epoch<<32|pid, u64 meta, comm[16], inet (u64 af, 16 bytes). */
function cntKey(o: { epoch: number; pid: number; kind: number; family: number; result?: number; port: number; netns?: number; comm: string; af: number; addr: number[] }): Uint8Array {
  const key = new Uint8Array(56);
  const view = new DataView(key.buffer);
  view.setBigUint64(0, (BigInt(o.epoch) << 32n) | BigInt(o.pid), true);
  view.setBigUint64(8, BigInt(o.kind) | (BigInt(o.family) << 4n) | (BigInt(o.result ?? 0) << 8n) | (BigInt(o.port) << 16n) | (BigInt(o.netns ?? 4026531840) << 32n), true);
  key.set(new TextEncoder().encode(o.comm), 16);
  view.setBigUint64(32, BigInt(o.af), true);
  key.set(o.addr, 40);
  return key;
}
const ucntKey = (o: { epoch: number; pid: number; abstract: boolean; result?: number; comm: string; path: string }) => {
  const key = new Uint8Array(96);
  const view = new DataView(key.buffer);
  view.setBigUint64(0, (BigInt(o.epoch) << 32n) | BigInt(o.pid), true);
  view.setBigUint64(8, 4n | (BigInt(o.abstract ? 2 : 1) << 4n) | (BigInt(o.result ?? 0) << 8n), true);
  key.set(new TextEncoder().encode(o.comm), 16);
  key.set(new TextEncoder().encode(o.path), 32);
  return key;
};
const totKey = (epoch: number, kind: number, failed: boolean) => {
  const key = new Uint8Array(8);
  new DataView(key.buffer).setBigUint64(0, (BigInt(epoch) << 8n) | (BigInt(kind) << 1n) | (failed ? 1n : 0n), true);
  return key;
};
const V4 = (a: number, b: number, c: number, d: number) => [a, b, c, d];
const MAPPED = (a: number, b: number, c: number, d: number) => [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d];

describe("count keys", () => {
  test("a real @cnt key read from the kernel (ntop of a v6 address, ::1)", () => {
    // Read by bpf() from a bpftrace map @cnt[epoch << 32 | pid, port | 7 << 16, comm, ntop(args->daddr_v6)].
    const key = Buffer.from("b1160000680500000dd7070000000000707974686f6e330000000000000000000a0000000000000000000000000000000000000000000001", "hex");
    const { epoch, row } = decodeCountKey(new Uint8Array(key));
    expect(epoch).toBe(0x568);
    expect(row).toMatchObject({ pid: 0x16b1, comm: "python3", remote_ip: "::1" });
  });

  test("TCP connects: ok, refused, timeout, no error, an errno", () => {
    const base = { epoch: 9, pid: 42, kind: 1, family: 4, port: 5432, comm: "psql", af: 2, addr: V4(10, 0, 0, 5) };
    expect(decodeCountKey(cntKey(base))).toEqual({
      epoch: 9,
      row: { type: "connect", protocol: "tcp", family: "ipv4", pid: 42, comm: "psql", netns: 4026531840, local_port: null, remote_ip: "10.0.0.5", remote_port: 5432, path: null, reason: null, return_code: null },
    });
    const reason = (result: number) => decodeCountKey(cntKey({ ...base, result })).row;
    expect(reason(111)).toMatchObject({ type: "connect_failed", reason: "refused" });
    expect(reason(110)).toMatchObject({ type: "connect_failed", reason: "timeout" });
    expect(reason(255)).toMatchObject({ type: "connect_failed", reason: "other" });
    expect(reason(113)).toMatchObject({ type: "connect_failed", reason: "EHOSTUNREACH" });
  });

  test("an accept keeps the listening port and the client's address; UDP keeps its return code", () => {
    const accept = decodeCountKey(cntKey({ epoch: 1, pid: 7, kind: 2, family: 6, port: 80, comm: "nginx", af: 10, addr: MAPPED(192, 168, 1, 9) })).row;
    expect(accept).toMatchObject({ type: "accept", family: "ipv6", local_port: 80, remote_ip: "::ffff:192.168.1.9", remote_port: null });
    const udp = decodeCountKey(cntKey({ epoch: 1, pid: 7, kind: 3, family: 4, result: 101, port: 53, comm: "dig", af: 2, addr: V4(127, 0, 0, 53) })).row;
    expect(udp).toMatchObject({ type: "connect", protocol: "udp", remote_ip: "127.0.0.53", remote_port: 53, return_code: -101, reason: "ENETUNREACH" });
  });

  test("unix connects: a path, an abstract name, a failure", () => {
    expect(decodeCountKey(ucntKey({ epoch: 3, pid: 5, abstract: false, comm: "systemd", path: "/run/dbus/system_bus_socket" })).row).toMatchObject({
      type: "connect", protocol: "unix", family: "unix", path: "/run/dbus/system_bus_socket", return_code: -0, reason: null,
    });
    expect(decodeCountKey(ucntKey({ epoch: 3, pid: 5, abstract: true, result: 111, comm: "x", path: "/tmp/.X11-unix/X0" })).row).toMatchObject({
      path: "@/tmp/.X11-unix/X0", return_code: -111, reason: "ECONNREFUSED",
    });
  });

  test("a @tot key", () => {
    expect(decodeTotalKey(totKey(77, 2, false))).toEqual({ epoch: 77, kind: 2, failed: false });
    expect(decodeTotalKey(totKey(77, 1, true))).toEqual({ epoch: 77, kind: 1, failed: true });
  });
});

/** A map in memory standing for a probe's per-CPU map (what the bpf() syscall does is tested end to end). */
class MemoryMap implements CountMap {
  readonly values = new Map<string, bigint>();
  constructor(readonly info: { name: string }) {}
  add(key: Uint8Array, n: number) {
    const id = Buffer.from(key).toString("hex");
    this.values.set(id, (this.values.get(id) ?? 0n) + BigInt(n));
  }
  keys() {
    return [...this.values.keys()].map((id) => new Uint8Array(Buffer.from(id, "hex")));
  }
  sum(key: Uint8Array) {
    return this.values.get(Buffer.from(key).toString("hex")) ?? null;
  }
  delete(key: Uint8Array) {
    return this.values.delete(Buffer.from(key).toString("hex"));
  }
  close() {}
}

describe("KernelCounts: every outcome booked once, ended epochs deleted, a full map's outcomes as (other)", () => {
  const EPOCH_NS = 2 ** 30;
  function setup() {
    const maps = new Map([["AT_cnt", new MemoryMap({ name: "AT_cnt" })], ["AT_ucnt", new MemoryMap({ name: "AT_ucnt" })], ["AT_tot", new MemoryMap({ name: "AT_tot" })]]);
    const clock = { now: 10 * EPOCH_NS + EPOCH_NS / 2 };
    const counts = new KernelCounts(1, { probeNs: () => clock.now, wallMs: (ns) => ns / 1e6 }, () => maps);
    const connect = (epoch: number, n: number, port = 443) => {
      maps.get("AT_cnt")!.add(cntKey({ epoch, pid: 42, kind: 1, family: 4, port, comm: "curl", af: 2, addr: V4(10, 0, 0, 1) }), n);
      maps.get("AT_tot")!.add(totKey(epoch, 1, false), n);
    };
    return { maps, clock, counts, connect };
  }
  const total = (rows: { n: number }[]) => rows.reduce((sum, row) => sum + row.n, 0);

  test("the current epoch is booked as it grows and kept; an ended one is booked to its end and deleted", () => {
    const { maps, clock, counts, connect } = setup();
    connect(9, 5);
    connect(10, 3);
    const first = counts.drain();
    expect(total(first)).toBe(8);
    expect(first.every((row) => row.comm === "curl")).toBe(true);
    expect(first.find((row) => row.n === 5)!.ts_ms).toBe(Math.floor((9 * EPOCH_NS) / 1e6));
    expect(maps.get("AT_cnt")!.values.size).toBe(1); // epoch 9 deleted, 10 kept
    connect(10, 4);
    expect(total(counts.drain())).toBe(4); // only the gain
    clock.now += EPOCH_NS;
    connect(10, 1);
    expect(total(counts.drain())).toBe(1);
    expect(maps.get("AT_cnt")!.values.size).toBe(0);
    expect(maps.get("AT_tot")!.values.size).toBe(0);
    expect(total(counts.drain())).toBe(0);
  });

  test("what @tot counted beyond the detail map (full) is booked once as (other)", () => {
    const { maps, counts, connect } = setup();
    connect(10, 2);
    maps.get("AT_tot")!.add(totKey(10, 1, false), 3); // three connects the full @cnt could not hold
    maps.get("AT_tot")!.add(totKey(10, 2, false), 1); // and an accept
    const rows = counts.drain();
    expect(total(rows)).toBe(6);
    expect(rows.filter((row) => row.comm === OTHER).map((row) => [row.type, row.n])).toEqual([
      ["connect", 3],
      ["accept", 1],
    ]);
    expect(total(counts.drain())).toBe(0); // not booked twice
  });

  test("drain(all) books every epoch and empties the maps (the last read before the probe stops)", () => {
    const { maps, counts, connect } = setup();
    connect(10, 7);
    expect(total(counts.drain(true))).toBe(7);
    expect([...maps.values()].every((map) => map.values.size === 0)).toBe(true);
  });
});

describe("formatIpBytes writes addresses as ntop does", () => {
  test.each([
    [[127, 0, 0, 1], "127.0.0.1"],
    [[...Array(15).fill(0), 1], "::1"],
    [Array(16).fill(0), "::"],
    [MAPPED(10, 1, 2, 3), "::ffff:10.1.2.3"],
    [[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1], "2001:db8::1:0:0:1"],
    [[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 0xab, 0xcd], "fe80::1234:0:0:abcd"],
  ])("%p → %s", (bytes, text) => {
    expect(formatIpBytes(new Uint8Array(bytes))).toBe(text);
  });
});
