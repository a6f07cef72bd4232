// Answers over the event history: the connection summary of a process or command over a window
// (get_connection_summary) and the patterns in it (analyze_patterns). Totals (attempts, failures,
// accepts, destinations, fan-out, failure rates, protocol mix) come from the counts table, exact
// where the kernel counted them (src/events/counts.ts); details (latency, bytes, closes, periodic
// connections, listeners) from the events, which may be a sample. The rows the filter selects
// (through an index) are copied once to a temp table per table, and each figure is one SQL
// aggregate over that copy: the cost follows the rows in the window, not the million in the store,
// and only the answer's few rows reach JavaScript.
import { z } from "zod";
import { whereClause, type FilteredTable } from "./query.ts";
import { CODES, NAMES } from "./codes.ts";
import type { EventStore } from "./store.ts";

export interface AnalysisFilter {
  pid?: number;
  /** Case-insensitive substring of the process name or of the program path it exec'd. */
  command?: string;
  sinceMs: number;
  /** Inclusive; now when absent. */
  untilMs?: number;
}

export const TOP_DESTINATIONS = 10;
export const TOP_PROCESSES = 10;
export const SUMMARY_PROCESSES = 20;
export const MAX_PERIODIC = 20;
export const MAX_NEW_LISTENERS = 50;
/** Connects to one destination needed before their intervals say anything about a period. */
export const PERIODIC_MIN_CONNECTS = 5;
/** Intervals whose standard deviation is under this fraction of their mean are a schedule, not chance. */
export const PERIODIC_MAX_CV = 0.2;

const TYPE = CODES.type;
const PROTOCOL = CODES.protocol;
/** An outgoing attempt: a TCP connect (established or failed) or a UDP/Unix connect() call. */
const OUTGOING = `type IN (${TYPE.connect}, ${TYPE.connect_failed})`;
/** An established TCP connect; one without a protocol comes from a TCP-only source (ss polling). */
const TCP_CONNECT = `type = ${TYPE.connect} AND (protocol = ${PROTOCOL.tcp} OR protocol IS NULL)`;
/** A UDP or Unix connect() call (connect_failed is TCP only, by definition). */
const SYSCALL_CONNECT = `type = ${TYPE.connect} AND protocol IN (${PROTOCOL.udp}, ${PROTOCOL.unix})`;
/** A TCP connect that never got established, or a UDP/Unix connect() that returned an error. */
const FAILED = `(type = ${TYPE.connect_failed} OR return_code < 0)`;

const windowSchema = z.object({ since: z.string(), until: z.string() }).describe("the window, ISO times, both ends included");
const sourcesSchema = z
  .record(z.string(), z.number())
  .describe("events per source: ebpf (complete) or ss-poll (sampled: short connections missed, no latency or bytes)");

export const summarySchema = z.object({
  window: windowSchema,
  events: z.number().describe("events of the matching processes in the window, all types"),
  sources: sourcesSchema,
  attempts: z.number().describe("TCP connects tried: established + failed"),
  established: z.number(),
  failed: z.object({
    total: z.number(),
    by_reason: z.record(z.string(), z.number()).describe("refused, timeout, other… (unknown when the source did not say)"),
  }),
  udp_unix_connects: z.object({ total: z.number(), failed: z.number().describe("connect() returned an error") }),
  accepted: z.number().describe("TCP connections accepted by the matching processes' listeners"),
  closed: z.number(),
  connect_latency_us: z
    .object({ samples: z.number(), avg: z.number(), p50: z.number(), p95: z.number(), max: z.number() })
    .nullable()
    .describe("SYN to established, over established TCP connects (percentiles interpolated); null without samples"),
  top_destinations: z
    .array(z.object({ remote_ip: z.string(), remote_port: z.number().nullable(), attempts: z.number(), failed: z.number() }))
    .describe(`the ${TOP_DESTINATIONS} most tried, TCP and UDP alike, most attempts first`),
  bytes: z.object({ sent: z.number(), received: z.number() }).describe("sums over the closed TCP connections that reported them"),
  processes: z
    .array(z.object({ pid: z.number(), comm: z.string(), path: z.string().nullable().describe("program path, when its exec was seen"), events: z.number() }))
    .describe(`the matching processes, most events first, at most ${SUMMARY_PROCESSES}`),
  processes_total: z.number(),
});
export type ConnectionSummary = z.infer<typeof summarySchema>;

export const patternsSchema = z.object({
  window: windowSchema,
  events: z.number(),
  sources: sourcesSchema,
  top_destinations: z
    .array(z.object({ remote_ip: z.string(), remote_port: z.number().nullable(), count: z.number(), processes: z.number().describe("distinct pids") }))
    .describe("outgoing attempts (connect, connect_failed) per destination, most first"),
  protocol_mix: z
    .object({ tcp: z.number(), udp: z.number(), unix: z.number() })
    .describe("connect, connect_failed and accept events per protocol"),
  fan_out: z
    .array(z.object({ pid: z.number(), comm: z.string(), destinations: z.number().describe("distinct ip:port or Unix socket paths"), attempts: z.number() }))
    .describe(`the ${TOP_PROCESSES} processes reaching the most distinct destinations`),
  failure_rates: z
    .array(z.object({ pid: z.number(), comm: z.string(), attempts: z.number(), failed: z.number(), rate: z.number().describe("failed / attempts, 0 to 1") }))
    .describe(`the ${TOP_PROCESSES} processes with the most failed outgoing attempts (none: nothing failed)`),
  periodic: z
    .array(
      z.object({
        comm: z.string(),
        remote_ip: z.string(),
        remote_port: z.number().nullable(),
        count: z.number(),
        interval_s_avg: z.number(),
        jitter_cv: z.number().describe("standard deviation of the intervals / their mean"),
      }),
    )
    .describe(
      `connections repeated on a schedule (beaconing, polling, health checks): at least ${PERIODIC_MIN_CONNECTS} to one ` +
        `destination whose intervals vary by less than ${PERIODIC_MAX_CV} of their mean`,
    ),
  new_listeners: z
    .array(z.object({ pid: z.number(), comm: z.string(), local_ip: z.string().nullable(), local_port: z.number().nullable(), ts: z.string() }))
    .describe(`sockets that started listening in the window, oldest first, at most ${MAX_NEW_LISTENERS}`),
  new_listeners_total: z.number(),
});
export type ConnectionPatterns = z.infer<typeof patternsSchema>;

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

/**
 * The rows of the filter, copied once into a temp table that every figure then reads. Each figure
 * reading the events table itself would repeat the index seeks and the random row fetches, most of
 * the cost (the 6.5k events of one busy command in an hour: ~4 ms a pass on a million-event store);
 * the copy is small and read in order. Temp tables live in memory (temp_store) and belong to this
 * connection; the analyses are synchronous, so one table serves them all in turn.
 */
const ROWS = "temp.analysis_rows";
/** The count rows of the filter, copied the same way: each row stands for n outcomes. */
const COUNTED = "temp.analysis_counts";

interface Scope {
  window: { since: string; until: string };
  /** Rows copied to ROWS. */
  events: number;
  /** Rows copied to COUNTED. */
  counted: number;
  /** A query on ROWS: its SQL never varies, so bun's statement cache keeps it prepared. */
  all<R>(sql: string, ...params: (string | number)[]): R[];
}

/** Copies the rows of `table` that the filter selects into `into`; returns how many. */
function copyRows(store: EventStore, filter: AnalysisFilter, table: FilteredTable, into: string): number {
  const where = whereClause(store, { pid: filter.pid, command: filter.command, sinceMs: filter.sinceMs, untilMs: filter.untilMs }, table);
  if (where.empty) return 0;
  // Prepared each time: the filter's SQL varies with what it matched (see EventStore.select).
  const copy = store.database.prepare(`INSERT INTO ${into} SELECT * FROM main.${table} WHERE ${where.sql}`);
  try {
    return copy.run(...where.params).changes;
  } finally {
    copy.finalize();
  }
}

function withRows<T>(store: EventStore, filter: AnalysisFilter, compute: (scope: Scope) => T): T {
  const untilMs = filter.untilMs ?? Date.now();
  const db = store.database;
  db.run("CREATE TEMP TABLE IF NOT EXISTS analysis_rows AS SELECT * FROM main.events WHERE 0");
  db.run("CREATE TEMP TABLE IF NOT EXISTS analysis_counts AS SELECT * FROM main.counts WHERE 0");
  db.run(`DELETE FROM ${ROWS}`);
  db.run(`DELETE FROM ${COUNTED}`);
  try {
    return compute({
      window: { since: new Date(filter.sinceMs).toISOString(), until: new Date(untilMs).toISOString() },
      events: copyRows(store, filter, "events", ROWS),
      counted: copyRows(store, filter, "counts", COUNTED),
      all: <R>(sql: string, ...params: (string | number)[]) => db.query(sql).all(...params) as R[],
    });
  } finally {
    db.run(`DELETE FROM ${ROWS}`);
    db.run(`DELETE FROM ${COUNTED}`);
  }
}

function sourcesOf(row: { ebpf: number; ss_poll: number }): Record<string, number> {
  const sources: Record<string, number> = {};
  if (row.ebpf > 0) sources.ebpf = row.ebpf;
  if (row.ss_poll > 0) sources["ss-poll"] = row.ss_poll;
  return sources;
}
const SOURCE_COUNTS = `count(*) FILTER (WHERE source = ${CODES.source.ebpf}) AS ebpf, count(*) FILTER (WHERE source = ${CODES.source["ss-poll"]}) AS ss_poll`;

interface Totals {
  established: number;
  failed: number;
  syscall_connects: number;
  syscall_failed: number;
  accepted: number;
}

interface Details {
  ebpf: number;
  ss_poll: number;
  closed: number;
  samples: number;
  latency_avg: number | null;
  latency_p50: number | null;
  latency_p95: number | null;
  latency_max: number | null;
  bytes_sent: number | null;
  bytes_received: number | null;
}

/** Attempts, failures by reason, latency, destinations and bytes of the matching processes over the window. */
export function connectionSummary(store: EventStore, filter: AnalysisFilter): ConnectionSummary {
  return withRows(store, filter, (scope) => summarize(store, scope));
}

function summarize(store: EventStore, scope: Scope): ConnectionSummary {
  if (scope.events === 0 && scope.counted === 0) return emptySummary(scope.window);
  // One pass for every figure: each FILTER clause picks its rows from the same scan.
  const totals = scope.all<Totals>(
    `SELECT
       coalesce(sum(n) FILTER (WHERE ${TCP_CONNECT}), 0) AS established,
       coalesce(sum(n) FILTER (WHERE type = ${TYPE.connect_failed}), 0) AS failed,
       coalesce(sum(n) FILTER (WHERE ${SYSCALL_CONNECT}), 0) AS syscall_connects,
       coalesce(sum(n) FILTER (WHERE ${SYSCALL_CONNECT} AND return_code < 0), 0) AS syscall_failed,
       coalesce(sum(n) FILTER (WHERE type = ${TYPE.accept}), 0) AS accepted
     FROM ${COUNTED}`,
  )[0]!;
  // percentile() is SQLite's percentile extension (built into Bun's SQLite): linear interpolation,
  // as numpy's default.
  const details = scope.all<Details>(
    `SELECT ${SOURCE_COUNTS},
       count(*) FILTER (WHERE type = ${TYPE.close}) AS closed,
       count(latency_us) FILTER (WHERE ${TCP_CONNECT}) AS samples,
       avg(latency_us) FILTER (WHERE ${TCP_CONNECT}) AS latency_avg,
       percentile(latency_us, 50) FILTER (WHERE ${TCP_CONNECT}) AS latency_p50,
       percentile(latency_us, 95) FILTER (WHERE ${TCP_CONNECT}) AS latency_p95,
       max(latency_us) FILTER (WHERE ${TCP_CONNECT}) AS latency_max,
       sum(bytes_sent) FILTER (WHERE type = ${TYPE.close}) AS bytes_sent,
       sum(bytes_received) FILTER (WHERE type = ${TYPE.close}) AS bytes_received
     FROM ${ROWS}`,
  )[0]!;

  const byReason: Record<string, number> = {};
  const reasons = scope.all<{ reason: string; n: number }>(
    `SELECT coalesce(reason, 'unknown') AS reason, sum(n) AS n FROM ${COUNTED} WHERE type = ${TYPE.connect_failed} GROUP BY 1 ORDER BY n DESC, reason`,
  );
  for (const row of reasons) byReason[row.reason] = row.n;

  const destinations = scope.all<{ remote_ip: string; remote_port: number | null; attempts: number; failed: number }>(
    `SELECT remote_ip, remote_port, sum(n) AS attempts, coalesce(sum(n) FILTER (WHERE ${FAILED}), 0) AS failed
     FROM ${COUNTED} WHERE ${OUTGOING} AND remote_ip IS NOT NULL
     GROUP BY remote_ip, remote_port ORDER BY attempts DESC, failed DESC, remote_ip, remote_port LIMIT ?`,
    TOP_DESTINATIONS,
  );

  // count(*) OVER () runs after the grouping and before the LIMIT: the number of processes in all.
  const processes = scope.all<{ pid: number; comm: string; events: number; last_ms: number; total: number }>(
    `SELECT pid, comm, count(*) AS events, max(ts_ms) AS last_ms, count(*) OVER () AS total
     FROM ${ROWS} GROUP BY pid, comm ORDER BY events DESC, pid, comm LIMIT ?`,
    SUMMARY_PROCESSES,
  );

  const latency =
    details.samples > 0
      ? {
          samples: details.samples,
          avg: round(details.latency_avg!, 1),
          p50: round(details.latency_p50!, 1),
          p95: round(details.latency_p95!, 1),
          max: details.latency_max!,
        }
      : null;
  return {
    window: scope.window,
    events: scope.events,
    sources: sourcesOf(details),
    attempts: totals.established + totals.failed,
    established: totals.established,
    failed: { total: totals.failed, by_reason: byReason },
    udp_unix_connects: { total: totals.syscall_connects, failed: totals.syscall_failed },
    accepted: totals.accepted,
    closed: details.closed,
    connect_latency_us: latency,
    top_destinations: destinations,
    bytes: { sent: details.bytes_sent ?? 0, received: details.bytes_received ?? 0 },
    // The path of the program each ran at its last event in the window (a pid may exec several).
    processes: processes.map((row) => ({ pid: row.pid, comm: row.comm, path: store.programPath(row.pid, row.last_ms), events: row.events })),
    processes_total: processes[0]?.total ?? 0,
  };
}

function emptySummary(window: ConnectionSummary["window"]): ConnectionSummary {
  return {
    window,
    events: 0,
    sources: {},
    attempts: 0,
    established: 0,
    failed: { total: 0, by_reason: {} },
    udp_unix_connects: { total: 0, failed: 0 },
    accepted: 0,
    closed: 0,
    connect_latency_us: null,
    top_destinations: [],
    bytes: { sent: 0, received: 0 },
    processes: [],
    processes_total: 0,
  };
}

/** Destinations, protocol mix, fan-out, failure rates, periodic connections and new listeners over the window. */
export function analyzePatterns(store: EventStore, filter: AnalysisFilter): ConnectionPatterns {
  return withRows(store, filter, findPatterns);
}

function findPatterns(scope: Scope): ConnectionPatterns {
  if (scope.events === 0 && scope.counted === 0) return emptyPatterns(scope.window);
  const sources = scope.all<{ ebpf: number; ss_poll: number }>(`SELECT ${SOURCE_COUNTS} FROM ${ROWS}`)[0]!;

  const topDestinations = scope.all<{ remote_ip: string; remote_port: number | null; count: number; processes: number }>(
    `SELECT remote_ip, remote_port, sum(n) AS count, count(DISTINCT pid) AS processes
     FROM ${COUNTED} WHERE ${OUTGOING} AND remote_ip IS NOT NULL
     GROUP BY remote_ip, remote_port ORDER BY count DESC, remote_ip, remote_port LIMIT ?`,
    TOP_DESTINATIONS,
  );

  // accept and connect_failed are TCP only, and a connect without a protocol comes from a TCP-only
  // source (ss polling): an event without one counts as TCP.
  const mix = { tcp: 0, udp: 0, unix: 0 };
  const protocols = scope.all<{ protocol: number; n: number }>(
    `SELECT coalesce(protocol, ${PROTOCOL.tcp}) AS protocol, sum(n) AS n
     FROM ${COUNTED} WHERE type IN (${TYPE.connect}, ${TYPE.connect_failed}, ${TYPE.accept}) GROUP BY 1`,
  );
  for (const row of protocols) mix[NAMES.protocol[row.protocol]!] += row.n;

  const fanOut = scope.all<{ pid: number; comm: string; destinations: number; attempts: number }>(
    `SELECT pid, comm, count(DISTINCT coalesce(remote_ip || ' ' || coalesce(remote_port, ''), path)) AS destinations, sum(n) AS attempts
     FROM ${COUNTED} WHERE ${OUTGOING}
     GROUP BY pid, comm ORDER BY destinations DESC, attempts DESC, pid LIMIT ?`,
    TOP_PROCESSES,
  );

  const failures = scope.all<{ pid: number; comm: string; attempts: number; failed: number }>(
    `SELECT pid, comm, sum(n) AS attempts, coalesce(sum(n) FILTER (WHERE ${FAILED}), 0) AS failed
     FROM ${COUNTED} WHERE ${OUTGOING}
     GROUP BY pid, comm HAVING failed > 0 ORDER BY failed DESC, CAST(failed AS REAL) / attempts DESC, pid LIMIT ?`,
    TOP_PROCESSES,
  );

  // The gaps between consecutive connects of one (comm, destination), then their mean and variance
  // (E[x²] − E[x]², exact enough for gaps of seconds in ms). A CV under the threshold is a schedule.
  const periodic = scope.all<{ comm: string; remote_ip: string; remote_port: number | null; count: number; mean: number; variance: number }>(
    `SELECT comm, remote_ip, remote_port, count(*) AS count, avg(gap) AS mean, max(0, avg(gap * gap) - avg(gap) * avg(gap)) AS variance
     FROM (
       SELECT comm, remote_ip, remote_port, ts_ms - lag(ts_ms) OVER (PARTITION BY comm, remote_ip, remote_port ORDER BY ts_ms) AS gap
       FROM ${ROWS} WHERE ${OUTGOING} AND remote_ip IS NOT NULL
     )
     GROUP BY comm, remote_ip, remote_port
     HAVING count >= ? AND mean > 0 AND variance < ? * mean * mean
     ORDER BY count DESC, comm, remote_ip, remote_port LIMIT ?`,
    PERIODIC_MIN_CONNECTS,
    PERIODIC_MAX_CV ** 2,
    MAX_PERIODIC,
  );

  // count(*) OVER () runs before the LIMIT: how many listened in all.
  const listeners = scope.all<{ pid: number; comm: string; local_ip: string | null; local_port: number | null; ts_ms: number; total: number }>(
    `SELECT pid, comm, local_ip, local_port, ts_ms, count(*) OVER () AS total FROM ${ROWS} WHERE type = ${TYPE.listen} ORDER BY ts_ms, id LIMIT ?`,
    MAX_NEW_LISTENERS,
  );

  return {
    window: scope.window,
    events: scope.events,
    sources: sourcesOf(sources),
    top_destinations: topDestinations,
    protocol_mix: mix,
    fan_out: fanOut,
    failure_rates: failures.map((row) => ({ ...row, rate: round(row.failed / row.attempts, 3) })),
    periodic: periodic.map((row) => ({
      comm: row.comm,
      remote_ip: row.remote_ip,
      remote_port: row.remote_port,
      count: row.count,
      interval_s_avg: round(row.mean / 1000, 3),
      jitter_cv: round(Math.sqrt(row.variance) / row.mean, 3),
    })),
    new_listeners: listeners.map((row) => ({ pid: row.pid, comm: row.comm, local_ip: row.local_ip, local_port: row.local_port, ts: new Date(row.ts_ms).toISOString() })),
    new_listeners_total: listeners[0]?.total ?? 0,
  };
}

function emptyPatterns(window: ConnectionPatterns["window"]): ConnectionPatterns {
  return {
    window,
    events: 0,
    sources: {},
    top_destinations: [],
    protocol_mix: { tcp: 0, udp: 0, unix: 0 },
    fan_out: [],
    failure_rates: [],
    periodic: [],
    new_listeners: [],
    new_listeners_total: 0,
  };
}
