// The query compiler of the event history: a filter becomes one WHERE condition that SQLite answers
// from the store's indexes (see the SCHEMA in store.ts), and the queries built on it: matching
// events with their count, and SQLite's plan of a filter. Functions over an open EventStore.
import type { SQLQueryBindings } from "bun:sqlite";
import { cidrContains, unmapV4, type Cidr } from "../snapshot/cidr.ts";
import { EVENT_TYPES, type ConnectionEvent, type EventType } from "./model.ts";
import { CODES } from "./codes.ts";
import { EVENT_COLUMNS, EventStore, type EventRow } from "./store.ts";

export const DEFAULT_QUERY_LIMIT = 100;
/**
 * A command matched by program path becomes one (pid, time range) index seek per process; past this
 * many processes (a needle like "bin") a check of each event in the window against processes is cheaper.
 */
export const MAX_PROCESS_RANGES = 20_000;

/** What selects events; every field narrows (AND). */
export interface EventFilter {
  pid?: number;
  /** Case-insensitive substring of the process name (comm), or of the program path the pid exec'd. */
  command?: string;
  /** Any of these types; absent or empty: all. */
  types?: readonly EventType[];
  /** Exact address; an IPv4 address also matches its v4-mapped form (::ffff:a.b.c.d). */
  remote_ip?: string;
  remote_cidr?: Cidr;
  /** Local or remote port. */
  port?: number;
  /** Inclusive bounds on ts_ms. */
  sinceMs?: number;
  untilMs?: number;
}

export interface EventQuery extends EventFilter {
  /** Events returned at most (default 100); `matched` still counts them all. */
  limit?: number;
  /** "newest" (default) or "oldest" first. */
  order?: "newest" | "oldest";
}

/** A WHERE condition and its parameters, for SQL built on the store (analysis.ts). */
export interface WhereClause {
  sql: string;
  params: SQLQueryBindings[];
  /** The filter can match nothing (an unknown command): callers may skip their query. */
  empty: boolean;
}

/**
 * The tables a filter applies to: the events, and the exact counts (src/events/counts.ts), whose
 * rows have the same column names and whose ts_ms is the start of a bucket of up to BUCKET_MS.
 */
export type FilteredTable = "events" | "counts";
/** A count row's bucket (2^30 ns) starts up to this long before the outcomes it holds. */
const BUCKET_MS = 1_074;

/** Distinct values of an indexed column by hopping along its index (one seek per value, not a scan). */
function distinctSql(column: "comm" | "remote_ip", table: FilteredTable): string {
  // "IS NOT NULL" lets SQLite use the partial remote_ip index.
  return `WITH RECURSIVE hop(value) AS (
      SELECT min(${column}) FROM ${table} WHERE ${column} IS NOT NULL
      UNION ALL
      SELECT (SELECT min(${column}) FROM ${table} WHERE ${column} IS NOT NULL AND ${column} > hop.value) FROM hop WHERE hop.value IS NOT NULL
    ) SELECT value FROM hop WHERE value IS NOT NULL`;
}

function distinct(store: EventStore, column: "comm" | "remote_ip", table: FilteredTable): string[] {
  return (store.database.query(distinctSql(column, table)).values() as [string][]).map((row) => row[0]);
}

/** 10.0.0.1 and ::ffff:10.0.0.1 are the same peer (a v4 client of a dual-stack socket). */
function addressForms(ip: string): string[] {
  const plain = unmapV4(ip.trim());
  return /^\d+\.\d+\.\d+\.\d+$/.test(plain) ? [plain, `::ffff:${plain}`] : [plain.toLowerCase()];
}

/**
 * The WHERE condition of a filter, using the indexes: a command becomes the exact comm values
 * that contain it (found by hopping along the comm index) plus the time ranges of the processes
 * whose program path contains it, so SQLite can seek instead of comparing every row's name.
 */
export function whereClause(store: EventStore, filter: EventFilter, table: FilteredTable = "events"): WhereClause {
  const terms: string[] = [];
  const params: SQLQueryBindings[] = [];
  const nothing: WhereClause = { sql: "0", params: [], empty: true };
  if (filter.sinceMs !== undefined) {
    terms.push("ts_ms >= ?");
    params.push(filter.sinceMs);
  }
  if (filter.untilMs !== undefined) {
    terms.push("ts_ms <= ?");
    params.push(filter.untilMs);
  }
  if (filter.pid !== undefined) {
    terms.push("pid = ?");
    params.push(filter.pid);
  }
  if (filter.types && filter.types.length > 0) {
    terms.push(`type IN (${[...new Set(filter.types)].map((type) => CODES.type[type]).join(", ")})`);
  }
  if (filter.port !== undefined) {
    terms.push("(remote_port = ? OR local_port = ?)");
    params.push(filter.port, filter.port);
  }
  if (filter.remote_ip !== undefined) {
    const forms = addressForms(filter.remote_ip);
    terms.push(`remote_ip IN (${forms.map(() => "?").join(", ")})`);
    params.push(...forms);
  }
  if (filter.remote_cidr !== undefined) {
    const cidr = filter.remote_cidr;
    const addresses = distinct(store, "remote_ip", table).filter((ip) => cidrContains(cidr, ip));
    if (addresses.length === 0) return nothing;
    terms.push(`remote_ip IN (${addresses.map(() => "?").join(", ")})`);
    params.push(...addresses);
  }
  const needle = filter.command?.trim().toLowerCase();
  if (needle) {
    const command = commandCondition(store, table, needle, filter.sinceMs, filter.untilMs);
    if (command === null) return nothing;
    terms.push(command.sql);
    params.push(...command.params);
  }
  return { sql: terms.length > 0 ? terms.join(" AND ") : "1", params, empty: false };
}

function commandCondition(
  store: EventStore,
  table: FilteredTable,
  needle: string,
  sinceMs: number | undefined,
  untilMs: number | undefined,
): { sql: string; params: SQLQueryBindings[] } | null {
  const alternatives: string[] = [];
  const params: SQLQueryBindings[] = [];
  // A bucket that began before the process's exec may hold its first outcomes.
  const slack = table === "counts" ? BUCKET_MS : 0;
  const comms = distinct(store, "comm", table).filter((comm) => comm.toLowerCase().includes(needle));
  if (comms.length > 0) {
    alternatives.push(`comm IN (${comms.map(() => "?").join(", ")})`);
    params.push(...comms);
  }
  // The events of each process whose program path contains the needle, between its exec and its
  // end, clipped to the window. Threads rename themselves (a JVM's "C2 CompilerThre"), and eBPF
  // reports the thread's name, so the path finds events the name misses.
  // SQLite's lower() folds ASCII only, as do the kernel's program paths in practice.
  const ranges = store.database
    .query(
      `SELECT pid, max(exec_ms, ?2) AS from_ms, min(coalesce(end_ms, ?3), ?3) AS to_ms FROM processes
       WHERE exec_ms IS NOT NULL AND instr(lower(path), ?1) > 0 AND exec_ms <= ?3 AND (end_ms IS NULL OR end_ms >= ?2)
       LIMIT ?4`,
    )
    .values(needle, sinceMs ?? 0, untilMs ?? Number.MAX_SAFE_INTEGER, MAX_PROCESS_RANGES + 1) as [number, number, number][];
  if (ranges.length > MAX_PROCESS_RANGES) {
    alternatives.push(
      `EXISTS (SELECT 1 FROM processes p WHERE p.pid = ${table}.pid AND p.exec_ms - ? <= ${table}.ts_ms
         AND (p.end_ms IS NULL OR p.end_ms >= ${table}.ts_ms) AND instr(lower(p.path), ?) > 0)`,
    );
    params.push(slack, needle);
  } else if (ranges.length > 0) {
    // The ranges go in as one JSON parameter, so the SQL stays the same whatever their number;
    // CROSS JOIN keeps them the outer loop: one (pid, ts_ms) index seek per range.
    alternatives.push(
      `id IN (SELECT e.id FROM json_each(?) AS r CROSS JOIN ${table} AS e
         ON e.pid = r.value ->> 0 AND e.ts_ms >= (r.value ->> 1) - ? AND e.ts_ms <= r.value ->> 2)`,
    );
    params.push(JSON.stringify(ranges), slack);
  }
  if (alternatives.length === 0) return null;
  return { sql: alternatives.length === 1 ? alternatives[0]! : `(${alternatives.join(" OR ")})`, params };
}

/** The types the counts table holds: their totals are exact where the kernel counted them. */
const COUNTED_TYPES: readonly EventType[] = ["connect", "accept", "connect_failed"];

/** How many rows (events), or outcomes (counts: the sum of n), of a table a filter selects. */
function countOf(store: EventStore, filter: EventFilter, table: FilteredTable): number {
  const where = whereClause(store, filter, table);
  if (where.empty) return 0;
  if (table === "events" && where.sql === "1") return store.rowCount;
  const measure = table === "counts" ? "coalesce(sum(n), 0)" : "count(*)";
  return store.select<{ n: number }>(`SELECT ${measure} AS n FROM ${table} WHERE ${where.sql}`, where.params)[0]!.n;
}

/**
 * The matching events, newest (or oldest) first, and how many matched before the limit. `matched`
 * takes connects, accepts and failed connects from the counts (exact where the kernel counted
 * them, when event lines were lost), or from the events where they hold more (a filter on an
 * ephemeral port, which counts do not keep); the other types from the events.
 */
export function queryEvents(store: EventStore, query: EventQuery = {}): { events: ConnectionEvent[]; matched: number } {
  const limit = Math.max(0, Math.floor(query.limit ?? DEFAULT_QUERY_LIMIT));
  const where = whereClause(store, query);
  const direction = query.order === "oldest" ? "ASC" : "DESC";
  const rows = where.empty
    ? []
    : store.select<EventRow>(`SELECT ${EVENT_COLUMNS.join(", ")} FROM events WHERE ${where.sql} ORDER BY ts_ms ${direction}, id ${direction} LIMIT ?`, [
        ...where.params,
        limit,
      ]);
  return { events: rows.map(EventStore.fromRow), matched: matchedCount(store, query) };
}

/**
 * How many events a filter matches: connects, accepts and failed connects from the counts, or
 * from `seen` (the events, or what a live capture saw) where that is more; other types from `seen`.
 */
export function matchedCount(
  store: EventStore,
  filter: EventFilter,
  seen: (types: readonly EventType[]) => number = (types) => countOf(store, { ...filter, types: [...types] }, "events"),
): number {
  const types = filter.types && filter.types.length > 0 ? filter.types : EVENT_TYPES;
  const counted = types.filter((type) => COUNTED_TYPES.includes(type));
  const other = types.filter((type) => !COUNTED_TYPES.includes(type));
  let matched = other.length > 0 ? seen(other) : 0;
  if (counted.length > 0) matched += Math.max(seen(counted), countOf(store, { ...filter, types: counted }, "counts"));
  return matched;
}

/** SQLite's plan for the query of a filter, one line per step (to check that an index is used). */
export function explainQuery(store: EventStore, filter: EventFilter): string[] {
  const where = whereClause(store, filter);
  const rows = store.select<{ detail: string }>(`EXPLAIN QUERY PLAN SELECT id FROM events WHERE ${where.sql} ORDER BY ts_ms DESC LIMIT 100`, where.params);
  return rows.map((row) => row.detail);
}
