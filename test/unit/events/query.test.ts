// The query compiler on a real EventStore (bun:sqlite): each filter selects what it says, they
// combine, limit and order cut the answer, and the filters an agent uses go through an index.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { makeEvent, type ConnectionEvent } from "../../../src/events/model.ts";
import { explainQuery, MAX_PROCESS_RANGES, queryEvents } from "../../../src/events/query.ts";
import { EventStore } from "../../../src/events/store.ts";
import { parseCidr } from "../../../src/snapshot/cidr.ts";

/** Recent enough that the default 24 h age limit keeps everything, round for readable offsets. */
const T0 = Math.floor((Date.now() - 2 * 60 * 60 * 1000) / 1000) * 1000;
const at = (seconds: number) => T0 + seconds * 1000;
/** A flush interval no test waits for: what a query sees is what flush() wrote. */
const NEVER = 3_600_000;

function connect(seconds: number, pid: number, comm: string, remote: [string, number], fields: Partial<ConnectionEvent> = {}): ConnectionEvent {
  return makeEvent({
    ts_ms: at(seconds), type: "connect", source: "ebpf", pid, comm, protocol: "tcp", family: remote[0].includes(":") ? "ipv6" : "ipv4",
    local_ip: "10.0.0.5", local_port: 40000 + seconds, remote_ip: remote[0], remote_port: remote[1], latency_us: 250, ...fields,
  });
}

describe("query", () => {
  let store: EventStore;
  beforeEach(() => {
    store = new EventStore({ flushMs: NEVER });
    store.add(makeEvent({ ts_ms: at(0), type: "listen", source: "ebpf", pid: 10, comm: "nginx", protocol: "tcp", family: "ipv4", local_ip: "0.0.0.0", local_port: 8080 }));
    store.add(connect(10, 100, "curl", ["93.184.216.34", 443]));
    store.add(connect(20, 100, "curl", ["10.1.2.3", 5432]));
    store.add(makeEvent({ ts_ms: at(30), type: "accept", source: "ebpf", pid: 10, comm: "nginx", protocol: "tcp", family: "ipv6", local_ip: "::ffff:10.0.0.5", local_port: 8080, remote_ip: "::ffff:10.1.2.3", remote_port: 51000 }));
    store.add(connect(40, 200, "wget", ["10.1.9.9", 80]));
    store.add(makeEvent({ ts_ms: at(50), type: "connect_failed", source: "ebpf", pid: 200, comm: "wget", protocol: "tcp", remote_ip: "10.1.9.9", remote_port: 80, reason: "refused" }));
    // pid 300: the shell before its exec, then the program (whose threads carry their own names),
    // its exit, and later a new process that reuses the pid.
    store.add(connect(55, 300, "bash", ["10.9.9.9", 53]));
    store.add(makeEvent({ ts_ms: at(60), type: "exec", source: "ebpf", pid: 300, ppid: 1, comm: "java", path: "/usr/lib/jvm/java-17/bin/java" }));
    store.add(connect(70, 300, "http-worker-1", ["10.5.5.5", 9200]));
    store.add(makeEvent({ ts_ms: at(80), type: "exit", source: "ebpf", pid: 300, comm: "java", exit_code: 143 }));
    store.add(connect(90, 300, "redis-cli", ["10.5.5.6", 6379]));
    store.flush();
  });
  afterEach(() => store.close());

  const times = (result: { events: ConnectionEvent[] }) => result.events.map((event) => (event.ts_ms - T0) / 1000);

  test("without a filter: everything, newest first, each event as it was added", () => {
    const result = queryEvents(store);
    expect(result.matched).toBe(11);
    expect(times(result)).toEqual([90, 80, 70, 60, 55, 50, 40, 30, 20, 10, 0]);
    expect(result.events.at(-1)).toEqual(makeEvent({ ts_ms: at(0), type: "listen", source: "ebpf", pid: 10, comm: "nginx", protocol: "tcp", family: "ipv4", local_ip: "0.0.0.0", local_port: 8080 }));
    expect(result.events.find((event) => event.type === "connect_failed")).toMatchObject({ reason: "refused", latency_us: null, source: "ebpf" });
  });

  test("by pid", () => {
    expect(times(queryEvents(store, { pid: 100 }))).toEqual([20, 10]);
  });

  test("by command: a case-insensitive part of the process name", () => {
    expect(times(queryEvents(store, { command: "CUR" }))).toEqual([20, 10]);
    expect(times(queryEvents(store, { command: "get" }))).toEqual([50, 40]);
    expect(queryEvents(store, { command: "postgres" })).toEqual({ events: [], matched: 0 });
  });

  test("by command: the program path of a process that has exited, from its exec to its exit only", () => {
    // "jvm" is in no comm: the exec, the worker thread's connect and the exit are found by the path;
    // the shell before the exec and the later process on the same pid are not.
    expect(times(queryEvents(store, { command: "jvm" }))).toEqual([80, 70, 60]);
    // "java" is also a comm: the same three (the exec and exit carry it), no duplicates.
    expect(queryEvents(store, { command: "java" }).matched).toBe(3);
    expect(times(queryEvents(store, { command: "jvm", sinceMs: at(65) }))).toEqual([80, 70]);
  });

  test("by types", () => {
    expect(times(queryEvents(store, { types: ["accept", "listen"] }))).toEqual([30, 0]);
    expect(times(queryEvents(store, { types: ["connect_failed"] }))).toEqual([50]);
  });

  test("by port, local or remote", () => {
    expect(times(queryEvents(store, { port: 8080 }))).toEqual([30, 0]);
    expect(times(queryEvents(store, { port: 5432 }))).toEqual([20]);
    expect(times(queryEvents(store, { port: 80 }))).toEqual([50, 40]);
  });

  test("by remote ip (an IPv4 address also finds its v4-mapped form) and by CIDR block", () => {
    expect(times(queryEvents(store, { remote_ip: "10.1.2.3" }))).toEqual([30, 20]);
    expect(times(queryEvents(store, { remote_ip: "::ffff:10.1.2.3" }))).toEqual([30, 20]);
    expect(times(queryEvents(store, { remote_cidr: parseCidr("10.1.0.0/16")! }))).toEqual([50, 40, 30, 20]);
    expect(times(queryEvents(store, { remote_cidr: parseCidr("10.5.5.5/32")! }))).toEqual([70]);
    expect(queryEvents(store, { remote_cidr: parseCidr("192.168.0.0/16")! }).matched).toBe(0);
  });

  test("by time: since and until are both included", () => {
    expect(times(queryEvents(store, { sinceMs: at(20), untilMs: at(40) }))).toEqual([40, 30, 20]);
    expect(times(queryEvents(store, { sinceMs: at(85) }))).toEqual([90]);
    expect(times(queryEvents(store, { untilMs: at(10) }))).toEqual([10, 0]);
  });

  test("limit cuts the answer, matched still counts all; order oldest starts at the other end", () => {
    expect(queryEvents(store, { limit: 2 })).toMatchObject({ matched: 11 });
    expect(times(queryEvents(store, { limit: 2 }))).toEqual([90, 80]);
    expect(times(queryEvents(store, { limit: 3, order: "oldest" }))).toEqual([0, 10, 20]);
    const narrowed = queryEvents(store, { command: "curl", types: ["connect"], limit: 1, order: "oldest" });
    expect(narrowed.matched).toBe(2);
    expect(times(narrowed)).toEqual([10]);
  });

  test("filters combine (AND)", () => {
    expect(times(queryEvents(store, { command: "wget", types: ["connect"], port: 80, remote_ip: "10.1.9.9", sinceMs: at(0) }))).toEqual([40]);
    expect(queryEvents(store, { pid: 100, port: 80 }).matched).toBe(0);
  });

  test("the filters an agent uses are answered from an index, not a scan of the table", () => {
    const window = { sinceMs: at(0), untilMs: at(100) };
    for (const filter of [
      window,
      { ...window, pid: 100 },
      { ...window, command: "curl" },
      { ...window, command: "jvm" },
      { ...window, port: 443 },
      { ...window, remote_ip: "10.1.2.3" },
      { ...window, remote_cidr: parseCidr("10.1.0.0/16")! },
    ]) {
      const plan = explainQuery(store, filter).join(" | ");
      expect(plan).toContain("USING");
      expect(plan).not.toMatch(/SCAN events(?! USING)/);
    }
  });

  test(`a needle in the paths of more than ${MAX_PROCESS_RANGES} programs is checked event by event, with the same answer`, () => {
    const many = new EventStore({ flushMs: NEVER });
    for (let pid = 1; pid <= MAX_PROCESS_RANGES + 1; pid++) {
      many.add(makeEvent({ ts_ms: at(pid / 1000), type: "exec", source: "ebpf", pid, comm: "job", path: "/opt/batch/job" }));
    }
    many.add(connect(100, 7, "worker-thread", ["10.0.0.1", 443]));
    many.add(connect(100, 999_999, "unrelated", ["10.0.0.1", 443]));
    many.flush();
    expect(explainQuery(many, { command: "batch" }).join(" | ")).toContain("SEARCH p EXISTS USING INDEX processes_pid");
    expect(queryEvents(many, { command: "batch", types: ["connect"] }).events.map((event) => event.comm)).toEqual(["worker-thread"]);
    expect(queryEvents(many, { command: "batch" }).matched).toBe(MAX_PROCESS_RANGES + 2);
    many.close();
  });
});
