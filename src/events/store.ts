// The event history: every connection and process event in SQLite (bun:sqlite), in memory by
// default or in a file (--state-dir), bounded by count and by age. It is what lets an agent ask
// "what did curl connect to in the last 10 minutes" after curl has exited: exec/exit events also
// feed a small processes table, so a command can be found by the program path it ran.
//
// Writes are batched (one transaction per flush, one prepared statement): a busy host sends
// thousands of events a second, and a transaction per event would cost a commit each.
// Enumerated fields (type, source, protocol, family) are stored as small integers, which SQLite
// keeps in 0 or 1 byte instead of the word: about 20 bytes per row, 20 MB per million events.
// Filters become SQL in query.ts; live subscribers hear events from the monitor (monitor.ts).
import { Database, type SQLQueryBindings, type Statement } from "bun:sqlite";
import { closeSync, existsSync, openSync } from "node:fs";
import { logger } from "../logger.ts";
import { CODES, NAMES } from "./codes.ts";
import { countOfEvent, CountTable, type CountRow } from "./counts.ts";
import type { ConnectionEvent } from "./model.ts";

export const DEFAULT_MAX_EVENTS = 1_000_000;
export const DEFAULT_MAX_AGE_MS = 24 * 60 * 60 * 1000;
/** Long enough to gather a burst into one transaction, short enough that a query soon sees an event. */
export const DEFAULT_FLUSH_MS = 200;
/** A flush as soon as this many events wait: bounds memory and the length of one transaction. */
export const FLUSH_BATCH = 5_000;
/** Events kept waiting while the database refuses writes (disk full); beyond it the oldest are dropped. */
export const MAX_BUFFERED_ON_ERROR = 100_000;
/** Bump when the tables change: a file written by another version is refused, not misread. */
const SCHEMA_VERSION = 1;

const TYPE_CODES = CODES.type;
const SOURCE_CODES = CODES.source;
const PROTOCOL_CODES = CODES.protocol;
const FAMILY_CODES = CODES.family;
const TYPE_NAMES = NAMES.type;
const SOURCE_NAMES = NAMES.source;
const PROTOCOL_NAMES = NAMES.protocol;
const FAMILY_NAMES = NAMES.family;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  ts_ms INTEGER NOT NULL,
  type INTEGER NOT NULL,
  source INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  ppid INTEGER,
  uid INTEGER,
  comm TEXT NOT NULL,
  protocol INTEGER,
  family INTEGER,
  local_ip TEXT,
  local_port INTEGER,
  remote_ip TEXT,
  remote_port INTEGER,
  path TEXT,
  return_code INTEGER,
  reason TEXT,
  latency_us INTEGER,
  duration_ms INTEGER,
  bytes_sent INTEGER,
  bytes_received INTEGER,
  exit_code INTEGER
);
-- Windows (since/until), retention by age and by count, newest-first answers without a filter.
-- ts_ms grows with arrival, so its entries (like the table's rows) go in at one end and leave at the other.
CREATE INDEX IF NOT EXISTS events_ts ON events (ts_ms);
-- The filters the summaries use, ts_ms second so "this one over the last N minutes" is one range.
CREATE INDEX IF NOT EXISTS events_pid_ts ON events (pid, ts_ms);
CREATE INDEX IF NOT EXISTS events_comm_ts ON events (comm, ts_ms);
-- The destination filter (an address or a CIDR block, see whereClause). Partial: exec, exit,
-- listen and Unix events have no remote address and cost nothing here.
CREATE INDEX IF NOT EXISTS events_remote_ip_ts ON events (remote_ip, ts_ms) WHERE remote_ip IS NOT NULL;
-- No port index. The port filter is "local or remote", an OR that SQLite answers from indexes only
-- when both columns have one, and ports are the costliest keys to keep: ephemeral ports scatter
-- each insert and each retention delete over the whole index. At steady state (store full, each
-- event in retires the oldest) on bench/events-summary.ts's data, an index on (local_port, ts_ms)
-- made every event cost 24 µs instead of 17, (remote_port, ts_ms) another 1.7 µs and up to as
-- much as local_port where accepts make the remote port ephemeral. Without them the port filter
-- reads the window through events_ts: ~3 ms for 10 minutes of a million-events-a-day host.
-- One row per program a pid ran: from its exec to its exit or its next exec (end_ms).
-- exec_ms is null for a process whose exit was seen but not its start.
CREATE TABLE IF NOT EXISTS processes (
  id INTEGER PRIMARY KEY,
  pid INTEGER NOT NULL,
  exec_ms INTEGER,
  comm TEXT NOT NULL,
  path TEXT,
  exit_ms INTEGER,
  exit_code INTEGER,
  end_ms INTEGER
);
CREATE INDEX IF NOT EXISTS processes_pid ON processes (pid, exec_ms);
CREATE INDEX IF NOT EXISTS processes_end ON processes (end_ms);
`;

/** The columns of an event row, in insert order (query.ts selects them too). */
export const EVENT_COLUMNS = [
  "ts_ms", "type", "source", "pid", "ppid", "uid", "comm", "protocol", "family", "local_ip", "local_port", "remote_ip",
  "remote_port", "path", "return_code", "reason", "latency_us", "duration_ms", "bytes_sent", "bytes_received", "exit_code",
] as const;

export interface EventStoreOptions {
  /** A file to keep the history in; in memory when absent. */
  path?: string;
  maxEvents?: number;
  maxAgeMs?: number;
  flushMs?: number;
}

export interface EventStoreStats {
  events: number;
  /** Added but not yet written (visible to queries after the next flush). */
  buffered: number;
  oldest_ms: number | null;
  newest_ms: number | null;
  dropped_by_retention: number;
  /** Lost because the database refused writes for too long (disk full, I/O error). */
  dropped_on_error: number;
  processes: number;
  /** Rows of exact counts (one per ~1 s bucket, process, destination and result). */
  count_rows: number;
  path: string;
}

/** A stored event as SQLite returns it. */
export type EventRow = Record<(typeof EVENT_COLUMNS)[number], number | string | null>;

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`EventStore: ${name} must be a positive number, got ${value}`);
  return value;
}

export class EventStore {
  /** The open database, for read queries built on the store (analysis.ts, the bench). */
  readonly database: Database;
  /** The exact connection totals, in the same database (src/events/counts.ts). */
  readonly counts: CountTable;
  readonly path: string;
  private readonly maxEvents: number;
  private readonly maxAgeMs: number;
  private readonly flushMs: number;
  private buffer: ConnectionEvent[] = [];
  /** Count rows waiting for the flush, merged by bucket and key. */
  private pendingCounts = new Map<string, CountRow>();
  /**
   * Whether each added connect, accept and connect_failed event is also counted (ss polling, tests):
   * true unless an exact source feeds the counts through addCounts (the kernel's, see the monitor).
   */
  countEvents = true;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private rows: number;
  private droppedByRetention = 0;
  private droppedOnError = 0;
  private closed = false;
  /** The last write failed: retry by the timer only. */
  private failing = false;
  private readonly insertEvent: Statement;
  private readonly endRunningProcess: Statement;
  private readonly insertProcess: Statement;
  private readonly recordExit: Statement;
  private readonly deleteOldest: Statement;
  private readonly deleteOlderThan: Statement;
  private readonly deleteEndedProcesses: Statement;
  /** Writes the events and applies retention, in one transaction; returns how many rows retention removed. */
  private readonly writeBatch: (events: ConnectionEvent[]) => number;

  constructor(options: EventStoreOptions = {}) {
    this.path = options.path ?? ":memory:";
    this.maxEvents = Math.floor(positive("maxEvents", options.maxEvents, DEFAULT_MAX_EVENTS));
    this.maxAgeMs = positive("maxAgeMs", options.maxAgeMs, DEFAULT_MAX_AGE_MS);
    this.flushMs = positive("flushMs", options.flushMs, DEFAULT_FLUSH_MS);
    this.database = EventStore.open(this.path);
    const db = this.database;

    this.rows = (db.query("SELECT count(*) AS n FROM events").get() as { n: number }).n;
    this.counts = new CountTable(db, { maxAgeMs: this.maxAgeMs });
    this.insertEvent = db.prepare(`INSERT INTO events (${EVENT_COLUMNS.join(", ")}) VALUES (${EVENT_COLUMNS.map(() => "?").join(", ")})`);
    // A new exec ends whatever program the pid ran before (exec replaces it, the pid stays).
    this.endRunningProcess = db.prepare("UPDATE processes SET end_ms = ? WHERE pid = ? AND end_ms IS NULL");
    this.insertProcess = db.prepare("INSERT INTO processes (pid, exec_ms, comm, path, exit_ms, exit_code, end_ms) VALUES (?, ?, ?, ?, ?, ?, ?)");
    this.recordExit = db.prepare("UPDATE processes SET exit_ms = ?1, exit_code = ?2, end_ms = ?1 WHERE pid = ?3 AND end_ms IS NULL");
    this.deleteOldest = db.prepare("DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY ts_ms, id LIMIT ?)");
    this.deleteOlderThan = db.prepare("DELETE FROM events WHERE ts_ms < ?");
    // A process that ended before the oldest event kept can no longer name any event's program.
    this.deleteEndedProcesses = db.prepare("DELETE FROM processes WHERE end_ms < coalesce((SELECT min(ts_ms) FROM events), ?)");
    this.writeBatch = db.transaction((events: ConnectionEvent[]) => {
      for (const event of events) {
        this.insertEvent.run(...EventStore.toRow(event));
        if (event.type === "exec") {
          this.endRunningProcess.run(event.ts_ms, event.pid);
          this.insertProcess.run(event.pid, event.ts_ms, event.comm, event.path, null, null, null);
        } else if (event.type === "exit") {
          // The exit of a process that started before the history did: keep its name and exit code.
          if (this.recordExit.run(event.ts_ms, event.exit_code, event.pid).changes === 0) {
            this.insertProcess.run(event.pid, null, event.comm, null, event.ts_ms, event.exit_code, event.ts_ms);
          }
        }
      }
      return this.applyRetention(this.rows + events.length);
    });
    // A file kept from an earlier run may hold more, or older, than these limits allow.
    if (this.rows > 0) {
      const removed = db.transaction(() => this.applyRetention(this.rows))();
      this.rows -= removed;
      this.droppedByRetention += removed;
    }
  }

  /** Opens (creating 0600: events name every peer of every process) and sets up the database. */
  private static open(path: string): Database {
    let db: Database | null = null;
    try {
      if (path !== ":memory:" && !existsSync(path)) closeSync(openSync(path, "a", 0o600));
      db = new Database(path, { create: true });
      if (path !== ":memory:") {
        // WAL: readers never wait for the flush; NORMAL: a power cut may lose the last flushes, never corrupt.
        db.run("PRAGMA journal_mode = WAL");
        db.run("PRAGMA synchronous = NORMAL");
        // 16 MB of page cache instead of 2: a summary over a busy hour touches a few MB of scattered
        // pages, which the default cache would re-read from the OS on every query (~20% slower).
        db.run("PRAGMA cache_size = -16384");
      }
      db.run("PRAGMA temp_store = MEMORY");
      const version = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
      if (version !== 0 && version !== SCHEMA_VERSION) {
        throw new Error(`it was written by another ipcscope version (schema ${version}, this one reads ${SCHEMA_VERSION}); move it away or use another --state-dir`);
      }
      db.exec(SCHEMA);
      db.run(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      return db;
    } catch (error) {
      db?.close();
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`cannot open the event store at ${path}: ${message}`);
    }
  }

  private static toRow(event: ConnectionEvent): SQLQueryBindings[] {
    return [
      event.ts_ms,
      TYPE_CODES[event.type],
      SOURCE_CODES[event.source],
      event.pid,
      event.ppid,
      event.uid,
      event.comm,
      event.protocol === null ? null : PROTOCOL_CODES[event.protocol],
      event.family === null ? null : FAMILY_CODES[event.family],
      event.local_ip,
      event.local_port,
      event.remote_ip,
      event.remote_port,
      event.path,
      event.return_code,
      event.reason,
      event.latency_us,
      event.duration_ms,
      event.bytes_sent,
      event.bytes_received,
      event.exit_code,
    ];
  }

  /** A stored row back to the event it was. */
  static fromRow(row: EventRow): ConnectionEvent {
    const numberOrNull = (value: number | string | null) => (value === null ? null : Number(value));
    const textOrNull = (value: number | string | null) => (value === null ? null : String(value));
    return {
      ts_ms: Number(row.ts_ms),
      type: TYPE_NAMES[Number(row.type)]!,
      source: SOURCE_NAMES[Number(row.source)]!,
      pid: Number(row.pid),
      ppid: numberOrNull(row.ppid),
      uid: numberOrNull(row.uid),
      comm: String(row.comm),
      protocol: row.protocol === null ? null : PROTOCOL_NAMES[Number(row.protocol)]!,
      family: row.family === null ? null : FAMILY_NAMES[Number(row.family)]!,
      local_ip: textOrNull(row.local_ip),
      local_port: numberOrNull(row.local_port),
      remote_ip: textOrNull(row.remote_ip),
      remote_port: numberOrNull(row.remote_port),
      path: textOrNull(row.path),
      return_code: numberOrNull(row.return_code),
      reason: textOrNull(row.reason),
      latency_us: numberOrNull(row.latency_us),
      duration_ms: numberOrNull(row.duration_ms),
      bytes_sent: numberOrNull(row.bytes_sent),
      bytes_received: numberOrNull(row.bytes_received),
      exit_code: numberOrNull(row.exit_code),
    };
  }

  /** Buffers the event (written at the next flush). */
  add(event: ConnectionEvent): void {
    if (this.closed) throw new Error(`the event store at ${this.path} is closed`);
    this.buffer.push(event);
    if (this.countEvents) {
      const row = countOfEvent(event);
      if (row) this.mergeCount(row);
    }
    // While writes fail, only the timer retries: not every add, nor a log line each.
    if (this.buffer.length >= FLUSH_BATCH && !this.failing) this.flushOrKeep();
    else this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.timer !== null || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flushOrKeep();
    }, this.flushMs);
    // The history alone must not keep the process alive.
    this.timer.unref();
  }

  /** Count rows to write at the next flush (the kernel's exact counts). */
  addCounts(rows: readonly CountRow[]): void {
    if (this.closed) throw new Error(`the event store at ${this.path} is closed`);
    for (const row of rows) this.mergeCount(row);
    this.scheduleFlush();
  }

  private mergeCount(row: CountRow): void {
    const key = `${row.ts_ms}|${row.type}|${row.protocol}|${row.family}|${row.pid}|${row.comm}|${row.local_port}|${row.remote_ip}|${row.remote_port}|${row.path}|${row.reason}|${row.return_code}|${row.netns}`;
    const pending = this.pendingCounts.get(key);
    if (pending) pending.n += row.n;
    else this.pendingCounts.set(key, { ...row });
  }

  /**
   * Writes the buffered events and counts now, each in one transaction, then applies retention.
   * Throws when a write fails; what it held then stays buffered and the timer retries it.
   */
  flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pendingCounts.size > 0) {
      const counts = this.pendingCounts;
      this.pendingCounts = new Map();
      try {
        this.counts.write([...counts.values()]);
      } catch (error) {
        // Nothing could be added meanwhile (all of this is synchronous): the rows wait as they were.
        this.pendingCounts = counts;
        this.scheduleFlush();
        throw error;
      }
    }
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    let removed: number;
    try {
      removed = this.writeBatch(batch);
    } catch (error) {
      // The transaction rolled back: nothing of the batch was written, so all of it waits for the timer's retry.
      this.buffer = batch.concat(this.buffer);
      this.scheduleFlush();
      throw error;
    }
    this.rows += batch.length - removed;
    this.droppedByRetention += removed;
  }

  /**
   * The flush of add() and of the timer: a failed write (disk full, I/O error) is logged once, the
   * events wait and are retried every flushMs, and past MAX_BUFFERED_ON_ERROR the oldest are dropped.
   */
  private flushOrKeep(): void {
    try {
      this.flush();
      if (this.failing) logger.info(`event store at ${this.path}: writing again`);
      this.failing = false;
    } catch (error) {
      if (!this.failing) logger.error(`event store at ${this.path}: cannot write events, keeping them to retry:`, error);
      this.failing = true;
      if (this.buffer.length > MAX_BUFFERED_ON_ERROR) {
        const excess = this.buffer.length - MAX_BUFFERED_ON_ERROR;
        this.buffer.splice(0, excess);
        this.droppedOnError += excess;
      }
      this.scheduleFlush();
    }
  }

  /** Runs inside the flush's transaction, with the row count including the batch; returns the rows removed. */
  private applyRetention(rows: number): number {
    let removed = 0;
    if (rows > this.maxEvents) removed += this.deleteOldest.run(rows - this.maxEvents).changes;
    const cutoff = Date.now() - this.maxAgeMs;
    removed += this.deleteOlderThan.run(cutoff).changes;
    if (removed > 0) this.deleteEndedProcesses.run(cutoff);
    return removed;
  }

  /** Events written (the buffered not yet), kept without a query: the count of an unfiltered query. */
  get rowCount(): number {
    return this.rows;
  }

  /**
   * Runs a read query. The SQL of a filter varies with what it matched (IN lists), so it is
   * prepared each time and finalized, not kept in bun's statement cache forever.
   */
  select<T>(sql: string, params: SQLQueryBindings[] = []): T[] {
    const statement = this.database.prepare(sql);
    try {
      return statement.all(...params) as T[];
    } finally {
      statement.finalize();
    }
  }

  /** The program a process ran at a time: the path of its latest exec at or before it, when seen. */
  programPath(pid: number, atMs: number): string | null {
    const row = this.database.query("SELECT path FROM processes WHERE pid = ? AND exec_ms <= ? ORDER BY exec_ms DESC LIMIT 1").get(pid, atMs) as { path: string | null } | null;
    return row?.path ?? null;
  }

  stats(): EventStoreStats {
    // Two queries: SQLite answers a lone min() or max() from the index end, both together by a scan.
    const oldest = (this.database.query("SELECT min(ts_ms) AS ts FROM events").get() as { ts: number | null }).ts;
    const newest = (this.database.query("SELECT max(ts_ms) AS ts FROM events").get() as { ts: number | null }).ts;
    const processes = (this.database.query("SELECT count(*) AS n FROM processes").get() as { n: number }).n;
    return {
      events: this.rows,
      buffered: this.buffer.length,
      oldest_ms: oldest,
      newest_ms: newest,
      dropped_by_retention: this.droppedByRetention,
      dropped_on_error: this.droppedOnError,
      processes,
      count_rows: this.counts.size,
      path: this.path,
    };
  }

  /**
   * Flushes what is buffered, then closes the database. Safe to call twice. A write that fails here
   * is thrown, and the events it held are lost with the store.
   */
  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } finally {
      this.closed = true;
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      this.database.close();
    }
  }
}
