// EventStore on real bun:sqlite: events wait in a buffer until a flush, close() loses none, retention
// keeps the newest within the count and age limits (and counts what it removed), the processes
// table names a pid's program, and a file store survives a reopen. The filters are in query.test.ts.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeEvent, type ConnectionEvent } from "../../../src/events/model.ts";
import { logger } from "../../../src/logger.ts";
import { queryEvents } from "../../../src/events/query.ts";
import { EventStore, FLUSH_BATCH, MAX_BUFFERED_ON_ERROR } from "../../../src/events/store.ts";

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
    expect(queryEvents(store).matched).toBe(0);
    expect(store.stats()).toMatchObject({ events: 0, buffered: 3 });
    store.flush();
    expect(queryEvents(store).matched).toBe(3);
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
    expect(queryEvents(store).matched).toBe(0);
    await Bun.sleep(100);
    expect(queryEvents(store).matched).toBe(1);
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

  test("a closed store refuses new events", () => {
    const store = new EventStore({ flushMs: NEVER });
    store.add(connect(0, 100, "curl", ["10.0.0.1", 443]));
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
    // The event rows are cut to 10; the counts of the connects (kept by age, not by maxEvents) still say 30 happened.
    expect(queryEvents(store).events).toHaveLength(10);
    expect(queryEvents(store).matched).toBe(30);
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
    expect(queryEvents(store).events.map((event) => event.comm)).toEqual(["sshd", "sshd"]);
    store.close();
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
    expect(queryEvents(second, { command: "/usr/bin/curl" }).matched).toBe(3);
    expect(queryEvents(second, { types: ["connect"] }).events[0]).toEqual(connect(2, 42, "curl", ["10.0.0.1", 443]));
    second.close();

    // Reopened with tighter limits, the store applies them at once.
    const third = new EventStore({ path, maxEvents: 2 });
    expect(third.stats()).toMatchObject({ events: 2, dropped_by_retention: 1, oldest_ms: at(2) });
    third.close();
  });

  test("the processes table gives the program of a pid at a time, also after its exit", () => {
    const store = new EventStore({ flushMs: NEVER });
    // pid 300: the shell before its exec, then the program, its exit, and a new process on the pid.
    store.add(connect(55, 300, "bash", ["10.9.9.9", 53]));
    store.add(makeEvent({ ts_ms: at(60), type: "exec", source: "ebpf", pid: 300, ppid: 1, comm: "java", path: "/usr/lib/jvm/java-17/bin/java" }));
    store.add(connect(70, 300, "http-worker-1", ["10.5.5.5", 9200]));
    store.add(makeEvent({ ts_ms: at(80), type: "exit", source: "ebpf", pid: 300, comm: "java", exit_code: 143 }));
    store.add(connect(90, 300, "redis-cli", ["10.5.5.6", 6379]));
    store.flush();
    expect(store.programPath(300, at(75))).toBe("/usr/lib/jvm/java-17/bin/java");
    expect(store.programPath(300, at(55))).toBeNull();
    expect(store.stats().processes).toBe(1);
    store.close();
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
      events: 0, buffered: 0, oldest_ms: null, newest_ms: null, dropped_by_retention: 0, dropped_on_error: 0, processes: 0, count_rows: 0, path: ":memory:",
    });
    store.close();
    store.close();
  });

  test("limits must be positive", () => {
    expect(() => new EventStore({ maxEvents: 0 })).toThrow("maxEvents must be a positive number, got 0");
  });
});
