// EventStore on real bun:sqlite: events wait in a buffer until a flush, close() loses none, retention
// keeps the newest within the count and age limits (and counts what it removed), each query filter
// selects what it says through an index, and a file store survives a reopen.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeEvent, type ConnectionEvent } from "../../../src/events/model.ts";
import { logger } from "../../../src/logger.ts";
import { EventStore, FLUSH_BATCH, MAX_BUFFERED_ON_ERROR, MAX_PROCESS_RANGES } from "../../../src/events/store.ts";
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

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ipcscope-store-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("batching", () => {
  test("added events stay invisible until a flush, then all of them are there", () => {
    const store = new EventStore({ flushMs: NEVER });
    for (let i = 0; i < 3; i++) store.add(connect(i, 100, "curl", ["10.0.0.1", 443]));
    expect(store.query().matched).toBe(0);
    expect(store.stats()).toMatchObject({ events: 0, buffered: 3 });
    store.flush();
    expect(store.query().matched).toBe(3);
    expect(store.stats()).toMatchObject({ events: 3, buffered: 0 });
    store.close();
  });

  test(`a full batch of ${FLUSH_BATCH} is written at once, without waiting for the timer`, () => {
    const store = new EventStore({ flushMs: NEVER });
    for (let i = 0; i < FLUSH_BATCH + 2; i++) store.add(connect(i / 1000, 100, "curl", ["10.0.0.1", 443]));
    expect(store.stats()).toMatchObject({ events: FLUSH_BATCH, buffered: 2 });
    store.close();
  });

  test("the timer writes what waits after flushMs", async () => {
    const store = new EventStore({ flushMs: 20 });
    store.add(connect(0, 100, "curl", ["10.0.0.1", 443]));
    expect(store.query().matched).toBe(0);
    await Bun.sleep(100);
    expect(store.query().matched).toBe(1);
    store.close();
  });

  test("close() writes the buffer: nothing added is lost", () => {
    const path = join(dir, "events.db");
    const store = new EventStore({ path, flushMs: NEVER });
    for (let i = 0; i < 7; i++) store.add(connect(i, 100, "curl", ["10.0.0.1", 443]));
    store.close();
    const reopened = new EventStore({ path });
    expect(reopened.stats().events).toBe(7);
    reopened.close();
  });

  test("subscribers hear each event as it is added, before any flush, until they unsubscribe", () => {
    const store = new EventStore({ flushMs: NEVER });
    const heard: number[] = [];
    const unsubscribe = store.subscribe((event) => heard.push(event.pid));
    // A failing subscriber is logged (not here: the test's output stays clean), and neither the
    // store nor the other subscribers notice.
    const stopBroken = store.subscribe(() => {
      throw new Error("a broken live tool");
    });
    const level = logger.level;
    logger.level = -999;
    try {
      store.add(connect(0, 100, "curl", ["10.0.0.1", 443]));
    } finally {
      logger.level = level;
      stopBroken();
    }
    expect(heard).toEqual([100]);
    unsubscribe();
    store.add(connect(1, 101, "curl", ["10.0.0.1", 443]));
    expect(heard).toEqual([100]);
    store.flush();
    expect(store.stats().events).toBe(2);
    store.close();
    expect(() => store.add(connect(2, 102, "curl", ["10.0.0.1", 443]))).toThrow("closed");
  });
});

describe("when writes fail", () => {
  /** SQLITE_FULL on the next page the database needs: a disk that is full. */
  const fillDisk = (store: EventStore) => {
    const pages = (store.database.query("PRAGMA page_count").get() as { page_count: number }).page_count;
    store.database.run(`PRAGMA max_page_count = ${pages}`);
  };
  const quietly = <T>(run: () => T): T => {
    const level = logger.level;
    logger.level = -999;
    try {
      return run();
    } finally {
      logger.level = level;
    }
  };

  test("flush() throws and keeps the events; the timer retries them, and none is lost once space is back", async () => {
    const store = new EventStore({ flushMs: 20 });
    fillDisk(store);
    for (let i = 0; i < 3; i++) store.add(connect(i, 100, "curl", ["10.0.0.1", 443], { comm: "x".repeat(2000) }));
    expect(() => store.flush()).toThrow(/full/);
    expect(store.stats()).toMatchObject({ events: 0, buffered: 3 });
    await quietly(() => Bun.sleep(60));
    expect(store.stats().buffered).toBe(3);
    store.database.run("PRAGMA max_page_count = 1000000");
    await Bun.sleep(60);
    expect(store.stats()).toMatchObject({ events: 3, buffered: 0, dropped_on_error: 0 });
    store.close();
  });

  test(`past ${MAX_BUFFERED_ON_ERROR} waiting events, the oldest are dropped and counted`, async () => {
    const store = new EventStore({ flushMs: 10 });
    fillDisk(store);
    const event = connect(0, 100, "curl", ["10.0.0.1", 443]);
    quietly(() => {
      for (let i = 0; i < MAX_BUFFERED_ON_ERROR + 10; i++) store.add(event);
    });
    await quietly(() => Bun.sleep(50));
    expect(store.stats()).toMatchObject({ events: 0, buffered: MAX_BUFFERED_ON_ERROR, dropped_on_error: 10 });
    store.database.run("PRAGMA max_page_count = 1000000");
    store.close();
  });
});

describe("retention", () => {
  test("by count: the oldest go, the newest maxEvents stay, and the removed are counted", () => {
    const store = new EventStore({ maxEvents: 10, flushMs: NEVER });
    // Added out of order: "oldest" is by time, not by arrival.
    for (let i = 24; i >= 0; i--) store.add(connect(i, 100 + i, "curl", ["10.0.0.1", 443]));
    store.flush();
    expect(store.stats()).toMatchObject({ events: 10, dropped_by_retention: 15, oldest_ms: at(15), newest_ms: at(24) });
    // One over the limit is one too many.
    store.add(connect(25, 125, "curl", ["10.0.0.1", 443]));
    store.flush();
    expect(store.stats()).toMatchObject({ events: 10, dropped_by_retention: 16, oldest_ms: at(16) });
    for (let i = 26; i < 30; i++) store.add(connect(i, 100 + i, "curl", ["10.0.0.1", 443]));
    store.flush();
    expect(store.stats()).toMatchObject({ events: 10, dropped_by_retention: 20, oldest_ms: at(20) });
    expect(store.query().matched).toBe(10);
    store.close();
  });

  test("by age: events older than maxAgeMs go at the next flush, and the processes that ended before them", () => {
    const now = Date.now();
    const store = new EventStore({ maxAgeMs: 60_000, flushMs: NEVER });
    const old = (ms: number, event: Partial<ConnectionEvent> & Pick<ConnectionEvent, "type">) => makeEvent({ source: "ebpf", pid: 7, comm: "cron", ts_ms: now - ms, ...event });
    store.add(old(180_000, { type: "exec", path: "/usr/sbin/cron" }));
    store.add(old(170_000, { type: "exit", exit_code: 0 }));
    store.add(old(120_000, { type: "connect", remote_ip: "10.0.0.1", remote_port: 25 }));
    store.add(old(30_000, { type: "exec", pid: 8, comm: "sshd", path: "/usr/sbin/sshd" }));
    store.add(old(1_000, { type: "connect", pid: 8, comm: "sshd", remote_ip: "10.0.0.2", remote_port: 22 }));
    store.flush();
    expect(store.stats()).toMatchObject({ events: 2, dropped_by_retention: 3, processes: 1 });
    expect(store.query().events.map((event) => event.comm)).toEqual(["sshd", "sshd"]);
    store.close();
  });
});

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
    const result = store.query();
    expect(result.matched).toBe(11);
    expect(times(result)).toEqual([90, 80, 70, 60, 55, 50, 40, 30, 20, 10, 0]);
    expect(result.events.at(-1)).toEqual(makeEvent({ ts_ms: at(0), type: "listen", source: "ebpf", pid: 10, comm: "nginx", protocol: "tcp", family: "ipv4", local_ip: "0.0.0.0", local_port: 8080 }));
    expect(result.events.find((event) => event.type === "connect_failed")).toMatchObject({ reason: "refused", latency_us: null, source: "ebpf" });
  });

  test("by pid", () => {
    expect(times(store.query({ pid: 100 }))).toEqual([20, 10]);
  });

  test("by command: a case-insensitive part of the process name", () => {
    expect(times(store.query({ command: "CUR" }))).toEqual([20, 10]);
    expect(times(store.query({ command: "get" }))).toEqual([50, 40]);
    expect(store.query({ command: "postgres" })).toEqual({ events: [], matched: 0 });
  });

  test("by command: the program path of a process that has exited, from its exec to its exit only", () => {
    // "jvm" is in no comm: the exec, the worker thread's connect and the exit are found by the path;
    // the shell before the exec and the later process on the same pid are not.
    expect(times(store.query({ command: "jvm" }))).toEqual([80, 70, 60]);
    // "java" is also a comm: the same three (the exec and exit carry it), no duplicates.
    expect(store.query({ command: "java" }).matched).toBe(3);
    expect(times(store.query({ command: "jvm", sinceMs: at(65) }))).toEqual([80, 70]);
  });

  test("by types", () => {
    expect(times(store.query({ types: ["accept", "listen"] }))).toEqual([30, 0]);
    expect(times(store.query({ types: ["connect_failed"] }))).toEqual([50]);
  });

  test("by port, local or remote", () => {
    expect(times(store.query({ port: 8080 }))).toEqual([30, 0]);
    expect(times(store.query({ port: 5432 }))).toEqual([20]);
    expect(times(store.query({ port: 80 }))).toEqual([50, 40]);
  });

  test("by remote ip (an IPv4 address also finds its v4-mapped form) and by CIDR block", () => {
    expect(times(store.query({ remote_ip: "10.1.2.3" }))).toEqual([30, 20]);
    expect(times(store.query({ remote_ip: "::ffff:10.1.2.3" }))).toEqual([30, 20]);
    expect(times(store.query({ remote_cidr: parseCidr("10.1.0.0/16")! }))).toEqual([50, 40, 30, 20]);
    expect(times(store.query({ remote_cidr: parseCidr("10.5.5.5/32")! }))).toEqual([70]);
    expect(store.query({ remote_cidr: parseCidr("192.168.0.0/16")! }).matched).toBe(0);
  });

  test("by time: since and until are both included", () => {
    expect(times(store.query({ sinceMs: at(20), untilMs: at(40) }))).toEqual([40, 30, 20]);
    expect(times(store.query({ sinceMs: at(85) }))).toEqual([90]);
    expect(times(store.query({ untilMs: at(10) }))).toEqual([10, 0]);
  });

  test("limit cuts the answer, matched still counts all; order oldest starts at the other end", () => {
    expect(store.query({ limit: 2 })).toMatchObject({ matched: 11 });
    expect(times(store.query({ limit: 2 }))).toEqual([90, 80]);
    expect(times(store.query({ limit: 3, order: "oldest" }))).toEqual([0, 10, 20]);
    const narrowed = store.query({ command: "curl", types: ["connect"], limit: 1, order: "oldest" });
    expect(narrowed.matched).toBe(2);
    expect(times(narrowed)).toEqual([10]);
  });

  test("filters combine (AND)", () => {
    expect(times(store.query({ command: "wget", types: ["connect"], port: 80, remote_ip: "10.1.9.9", sinceMs: at(0) }))).toEqual([40]);
    expect(store.query({ pid: 100, port: 80 }).matched).toBe(0);
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
      const plan = store.explain(filter).join(" | ");
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
    expect(many.explain({ command: "batch" }).join(" | ")).toContain("SEARCH p EXISTS USING INDEX processes_pid");
    expect(many.query({ command: "batch", types: ["connect"] }).events.map((event) => event.comm)).toEqual(["worker-thread"]);
    expect(many.query({ command: "batch" }).matched).toBe(MAX_PROCESS_RANGES + 2);
    many.close();
  });

  test("the processes table gives the program of a pid at a time, also after its exit", () => {
    expect(store.programPath(300, at(75))).toBe("/usr/lib/jvm/java-17/bin/java");
    expect(store.programPath(300, at(55))).toBeNull();
    expect(store.stats().processes).toBe(1);
  });
});

describe("the database", () => {
  test("a file store keeps its events across a reopen, in a file only its owner reads", () => {
    const path = join(dir, "events.db");
    const first = new EventStore({ path, flushMs: NEVER });
    first.add(makeEvent({ ts_ms: at(1), type: "exec", source: "ebpf", pid: 42, comm: "curl", path: "/usr/bin/curl" }));
    first.add(connect(2, 42, "curl", ["10.0.0.1", 443]));
    first.add(makeEvent({ ts_ms: at(3), type: "exit", source: "ebpf", pid: 42, comm: "curl", exit_code: 0 }));
    first.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);

    const second = new EventStore({ path });
    expect(second.stats()).toMatchObject({ events: 3, processes: 1, path, oldest_ms: at(1), newest_ms: at(3) });
    expect(second.query({ command: "/usr/bin/curl" }).matched).toBe(3);
    expect(second.query({ types: ["connect"] }).events[0]).toEqual(connect(2, 42, "curl", ["10.0.0.1", 443]));
    second.close();

    // Reopened with tighter limits, the store applies them at once.
    const third = new EventStore({ path, maxEvents: 2 });
    expect(third.stats()).toMatchObject({ events: 2, dropped_by_retention: 1, oldest_ms: at(2) });
    third.close();
  });

  test("a path that cannot be opened gives an error that names it", () => {
    const missing = join(dir, "no-such-dir", "events.db");
    expect(() => new EventStore({ path: missing })).toThrow(`cannot open the event store at ${missing}`);
    const notADatabase = join(dir, "notes.txt");
    writeFileSync(notADatabase, "these are not the pages you are looking for ".repeat(200));
    expect(() => new EventStore({ path: notADatabase })).toThrow(new RegExp(`cannot open the event store at ${notADatabase}: .*not a database`));
  });

  test("an in-memory store says so in its stats", () => {
    const store = new EventStore();
    expect(store.stats()).toEqual({
      events: 0, buffered: 0, oldest_ms: null, newest_ms: null, dropped_by_retention: 0, dropped_on_error: 0, processes: 0, path: ":memory:",
    });
    store.close();
    store.close();
  });

  test("limits must be positive", () => {
    expect(() => new EventStore({ maxEvents: 0 })).toThrow("maxEvents must be a positive number, got 0");
  });
});
