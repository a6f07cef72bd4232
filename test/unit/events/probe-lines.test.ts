import { describe, expect, test } from "bun:test";
import { dropSampleSchema } from "../../../src/health/drops.ts";
import { mapLineSchema } from "../../../src/health/window.ts";
import { eventOfLine, Lines, MAX_OPEN_CONNECTIONS, probeLineSchema, type ProbeLine } from "../../../src/events/probe-lines.ts";
import { PROBES } from "../../../src/probes/catalog.ts";

/** The JSON lines of a probe header's Example section. */
function examples(source: string): unknown[] {
  const section = /\* Example:\n([\s\S]*?)\n \* (?:[A-Z][a-z]+:|\/)/.exec(source)?.[1] ?? "";
  return section
    .split("\n")
    .map((line) => line.replace(/^ \*\s*/, ""))
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line));
}

/** What the supervisor hands a -f json probe's consumer for one of its records (see ProbeSupervisor.jsonRecord). */
function asConsumed(record: { type: string; data?: unknown }): unknown[] {
  if (record.type === "map") return Object.entries(record.data as object).map(([name, data]) => ({ type: "map", name, data }));
  return [record];
}

describe("the Example lines of every probe header", () => {
  const schemaOf: Record<string, { safeParse: (v: unknown) => { success: boolean; error?: unknown } }[]> = {
    trace_connections: [probeLineSchema],
    trace_exec: [probeLineSchema],
    trace_drops: [mapLineSchema, dropSampleSchema],
    trace_tcp_health: [mapLineSchema],
    trace_syscall_errors: [mapLineSchema],
  };

  test("every probe has a consumer schema here, and example lines", () => {
    expect(Object.keys(schemaOf).sort()).toEqual(PROBES.map((probe) => probe.name).sort());
    for (const probe of PROBES) expect(examples(probe.source).length).toBeGreaterThan(0);
  });

  for (const probe of PROBES) {
    test(`${probe.name}: each example line is what its consumer's schema accepts`, () => {
      for (const record of examples(probe.source)) {
        for (const line of asConsumed(record as { type: string })) {
          const ok = schemaOf[probe.name]!.some((schema) => schema.safeParse(line).success);
          if (!ok) throw new Error(`${probe.name}: the example ${JSON.stringify(line)} fits no schema of its consumer`);
        }
      }
    });
  }

  test("trace_connections: the examples become the events their fields say", () => {
    const lines = examples(PROBES.find((p) => p.name === "trace_connections")!.source).map((line) => probeLineSchema.parse(line));
    const events = lines.map((line) => eventOfLine(line, 1_000));
    expect(events.map((event) => event.type)).toEqual(["listen", "connect", "accept", "close", "close", "connect_failed", "connect", "connect"]);
    expect(events[1]).toMatchObject({ pid: 4242, comm: "curl", protocol: "tcp", family: "ipv4", remote_ip: "127.0.0.1", remote_port: 80, latency_us: 41 });
    expect(events[2]).toMatchObject({ pid: 4101, comm: "nginx", local_port: 80, remote_port: 43512 });
    expect(events[3]).toMatchObject({ type: "close", duration_ms: 120, bytes_sent: 78, bytes_received: 612 });
    expect(events[5]).toMatchObject({ type: "connect_failed", reason: "refused", family: "ipv6" });
    expect(events[6]).toMatchObject({ protocol: "unix", path: "/run/dbus/system_bus_socket", remote_port: null, return_code: 0 });
  });
});

const close = (fields: Partial<Extract<ProbeLine, { type: "close" }>>): ProbeLine =>
  probeLineSchema.parse({
    type: "close", ts_ns: 5_000_000, pid: 7, uid: 0, comm: "curl", family: 4, laddr: "127.0.0.1", lport: 40000, raddr: "127.0.0.1", rport: 80,
    side: 1, duration_ms: 2, bytes_sent: 10, bytes_received: 20, latency_us: 33, open_ts_ns: 3_000_000, sk: 99, ...fields,
  });
const connect = (fields: Record<string, unknown> = {}): ProbeLine =>
  probeLineSchema.parse({
    type: "connect", ts_ns: 3_000_000, pid: 7, uid: 0, comm: "curl", proto: "tcp", family: 4, laddr: "127.0.0.1", lport: 40000, raddr: "127.0.0.1", rport: 80,
    latency_us: 33, sk: 99, ...fields,
  });

describe("Lines: one connection, one connect (or accept) and one close, whatever the probe printed", () => {
  const wall = (tsNs: number) => tsNs / 1e6;

  test("a close whose connect was not printed makes the connect, at the open time, with its latency", () => {
    const events = new Lines(wall).events(close({}));
    expect(events.map((e) => e.type)).toEqual(["connect", "close"]);
    expect(events[0]).toMatchObject({ ts_ms: 3, pid: 7, comm: "curl", remote_ip: "127.0.0.1", remote_port: 80, local_port: 40000, latency_us: 33, protocol: "tcp" });
    expect(events[1]).toMatchObject({ ts_ms: 5, duration_ms: 2 });
  });

  test("a connect line, then its close: no second connect", () => {
    const lines = new Lines(wall);
    expect(lines.events(connect()).map((e) => e.type)).toEqual(["connect"]);
    expect(lines.events(close({})).map((e) => e.type)).toEqual(["close"]);
  });

  test("a close, then its connect line late (another CPU's flush): the late line is dropped", () => {
    const lines = new Lines(wall);
    expect(lines.events(close({})).map((e) => e.type)).toEqual(["connect", "close"]);
    expect(lines.events(connect())).toEqual([]);
  });

  test("the same socket address reused by a later connection is another connection", () => {
    const lines = new Lines(wall);
    lines.events(close({}));
    expect(lines.events(connect({ ts_ns: 6_000_000 })).map((e) => e.type)).toEqual(["connect"]);
  });

  test("a passive close makes an accept only when the connection was accept()ed", () => {
    const lines = new Lines(wall);
    expect(lines.events(close({ side: 3, latency_us: -1, lport: 80, rport: 40000 })).map((e) => e.type)).toEqual(["accept", "close"]);
    expect(lines.events(close({ side: 3, latency_us: -1, sk: 100 }))[0]).toMatchObject({ type: "accept", latency_us: null });
    expect(lines.events(close({ side: 2, sk: 101 })).map((e) => e.type)).toEqual(["close"]);
    expect(lines.events(close({ side: 0, sk: 102, duration_ms: -1 })).map((e) => e.type)).toEqual(["close"]);
  });

  test("connections left open are remembered up to a bound, the oldest forgotten first", () => {
    const lines = new Lines(wall);
    for (let sk = 0; sk <= MAX_OPEN_CONNECTIONS; sk++) lines.events(connect({ sk }));
    // The first was forgotten: its close makes its connect again; the last was not.
    expect(lines.events(close({ sk: 0 })).map((e) => e.type)).toEqual(["connect", "close"]);
    expect(lines.events(close({ sk: MAX_OPEN_CONNECTIONS })).map((e) => e.type)).toEqual(["close"]);
  });
});
