#!/usr/bin/env bun
// Event history benchmark: how long connectionSummary (get_connection_summary) takes on a store
// holding a day of a busy host's events (1,000,000 by default), in memory and in a file.
//   bun bench/events-summary.ts [--events N] [--runs N] [--save PATH] [--json] [--check]
// The data is generated (seeded, so every run sees the same): events spread over the last 24 h,
// ~300 process names with a Zipf-like popularity (the first has ~16% of the events, the 30th ~0.5%),
// ~5k pids, ~2k destinations (ip:port), 5% of TCP connects failing, UDP and Unix connects, accepts,
// closes with bytes, listens, exec/exit. It measures:
//   - insert: events/s through add() (which flushes every 5000) and a last flush(), generation not
//     counted: filling the empty store, then at steady state (the store full, each flush also retiring
//     as many of the oldest events: what a busy host costs all day long);
//   - the summary of a mid-popularity command (the 30th name) over the last 10 minutes and of the most
//     popular one over the last hour: median of --runs runs after a warm-up, interleaved with a baseline,
//     `SELECT count(*) FROM events WHERE ts_ms >= ?` over the same window, and printed as a ratio to it
//     (the machine is noisy: compare the ratios across runs, not only the milliseconds);
//   - the database's size (PRAGMA page_count × page_size) and its share per table and index (dbstat);
//   - the same summaries on a file-backed store (a copy made with VACUUM INTO, under a temp dir that is
//     removed afterwards).
// Goal: each summary's median under 50 ms. --check exits 1 when one is not.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectionSummary, type ConnectionSummary } from "../src/events/analysis.ts";
import { fail, integerOption, log, stats, type Stats } from "./_lib.ts";
import { makeEvent, type ConnectionEvent } from "../src/events/model.ts";
import { EventStore } from "../src/events/store.ts";

const GOAL_MS = 50;
const DAY_MS = 24 * 60 * 60 * 1000;
const COMMS = 300;
const PIDS = 5_000;
const DESTINATIONS = 2_000;
/** Events generated (and added) per chunk: keeps the generated objects out of the timing and the heap small. */
const CHUNK = 50_000;
const WARMUP_RUNS = 2;
/** Events added to the full store for the steady-state insert rate. */
const STEADY_EVENTS = 100_000;

/** Real names for the busiest processes (none a substring of another), generated ones for the long tail. */
const BUSY_NAMES = [
  "nginx", "postgres", "java", "python3", "node", "curl", "sshd", "systemd-resolve", "chronyd", "dockerd",
  "containerd", "redis-server", "haproxy", "envoy", "kubelet", "prometheus", "grafana", "elasticsearch", "mysqld", "php-fpm",
  "gunicorn", "celery", "rsyslogd", "NetworkManager", "sssd_be", "wget", "git-remote-http", "dnf", "rpcbind", "memcached",
];
const PORTS = [443, 80, 5432, 6379, 53, 8080, 9200, 3306, 11211, 25, 8443, 9090, 2379, 5672, 27017];

interface Options {
  events: number;
  runs: number;
  json: boolean;
  check: boolean;
  save: string | null;
}

const USAGE = `usage: bun bench/events-summary.ts [options]
  --events N   events in the store (default 1000000)
  --runs N     measured runs per figure, after ${WARMUP_RUNS} warm-up runs (default 9, at least 7 for a fair median)
  --save PATH  also write the generated database to PATH (to explore it with sqlite3 or EXPLAIN QUERY PLAN)
  --json       print one JSON object instead of the table (progress goes to stderr)
  --check      exit 1 if a summary's median is over ${GOAL_MS} ms (default: exit 0 regardless)`;

function parseArgs(argv: string[]): Options {
  const options: Options = { events: 1_000_000, runs: 9, json: false, check: false, save: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case "--events": options.events = integerOption(flag, value(), 1_000); break;
      case "--runs": options.runs = integerOption(flag, value(), 1); break;
      case "--save": options.save = value() ?? fail("--save needs a path"); break;
      case "--json": options.json = true; break;
      case "--check": options.check = true; break;
      case "-h":
      case "--help":
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
      default: fail(`unknown argument "${arg}"\n${USAGE}`);
    }
  }
  return options;
}

// ---- the generated host ----

/** mulberry32: a small seeded generator, so every run of the bench stores the same events. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Draws ranks 0..n-1 with probability proportional to 1/(rank+1)^exponent. */
function zipf(n: number, exponent: number, random: () => number): () => number {
  const cumulative = new Float64Array(n);
  let total = 0;
  for (let rank = 0; rank < n; rank++) cumulative[rank] = total += 1 / (rank + 1) ** exponent;
  return () => {
    const target = random() * total;
    let low = 0;
    let high = n - 1;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (cumulative[mid]! < target) low = mid + 1;
      else high = mid;
    }
    return low;
  };
}

interface Host {
  comms: string[];
  /** The pids of each comm: busy programs run many processes, the tail one or two. */
  pidsOf: number[][];
  destinations: { ip: string; port: number }[];
}

function makeHost(random: () => number): Host {
  const comms = Array.from({ length: COMMS }, (_, rank) => BUSY_NAMES[rank] ?? `svc-${String(rank).padStart(3, "0")}`);
  // Pids per comm follow the square root of its popularity, at least one each: ~5k in all.
  const weights = comms.map((_, rank) => 1 / Math.sqrt(rank + 1));
  const weightTotal = weights.reduce((sum, weight) => sum + weight, 0);
  let nextPid = 1_000;
  const pidsOf = weights.map((weight) => Array.from({ length: Math.max(1, Math.round((PIDS - COMMS) * (weight / weightTotal))) }, () => nextPid++));
  const destinations = Array.from({ length: DESTINATIONS }, (_, i) => ({
    ip: i % 10 === 0 ? `2001:db8::${(i + 1).toString(16)}` : `10.${(i >> 8) & 255}.${i & 255}.${(i * 7) % 250 + 1}`,
    port: PORTS[Math.floor(random() * PORTS.length)]!,
  }));
  return { comms, pidsOf, destinations };
}

/** A lognormal-looking latency: most connects take a few hundred µs, a tail takes tens of ms. */
function latencyUs(random: () => number): number {
  const normal = Math.sqrt(-2 * Math.log(random() || 1e-9)) * Math.cos(2 * Math.PI * random());
  return Math.max(20, Math.round(300 * Math.exp(0.9 * normal)));
}

/** count events spread evenly (with jitter) from startMs to endMs. */
function* generate(count: number, startMs: number, endMs: number, host: Host, random: () => number): Generator<ConnectionEvent> {
  const pickComm = zipf(COMMS, 1, random);
  const pickDestination = zipf(DESTINATIONS, 1.1, random);
  const start = startMs;
  const step = (endMs - startMs) / count;
  for (let i = 0; i < count; i++) {
    const rank = pickComm();
    const comm = host.comms[rank]!;
    const pids = host.pidsOf[rank]!;
    const pid = pids[Math.floor(random() * pids.length)]!;
    // Each program has its own favourite destinations: shift the shared Zipf by its rank.
    const destination = host.destinations[(pickDestination() + rank * 37) % DESTINATIONS]!;
    const family = destination.ip.includes(":") ? ("ipv6" as const) : ("ipv4" as const);
    const base = { ts_ms: Math.round(start + i * step + random() * step), source: "ebpf" as const, pid, ppid: 1, uid: 0, comm };
    const tcp = { protocol: "tcp" as const, family, local_ip: family === "ipv6" ? "2001:db8::ffff" : "10.0.0.5", local_port: 32768 + Math.floor(random() * 28000), remote_ip: destination.ip, remote_port: destination.port };
    const roll = random();
    if (roll < 0.45) {
      // TCP connects; 5% of them fail: refused fast, timeouts after the SYN retries.
      if (random() < 0.05) {
        const kind = random();
        const reason = kind < 0.6 ? "refused" : kind < 0.9 ? "timeout" : "other";
        yield makeEvent({ ...base, ...tcp, type: "connect_failed", reason, latency_us: reason === "timeout" ? 3_000_000 + Math.round(random() * 60_000_000) : latencyUs(random) });
      } else {
        yield makeEvent({ ...base, ...tcp, type: "connect", latency_us: latencyUs(random) });
      }
    } else if (roll < 0.8) {
      yield makeEvent({ ...base, ...tcp, type: "close", duration_ms: Math.round(random() * 30_000), bytes_sent: Math.round(random() * 20_000), bytes_received: Math.round(random() * 200_000) });
    } else if (roll < 0.92) {
      yield makeEvent({ ...base, ...tcp, type: "accept", local_port: destination.port, remote_port: 32768 + Math.floor(random() * 28000) });
    } else if (roll < 0.97) {
      const failed = random() < 0.05;
      yield makeEvent({ ...base, type: "connect", protocol: "udp", family, remote_ip: destination.ip, remote_port: 53, return_code: failed ? -101 : 0, reason: failed ? "ENETUNREACH" : null });
    } else if (roll < 0.993) {
      yield makeEvent({ ...base, type: "connect", protocol: "unix", family: "unix", path: "/run/dbus/system_bus_socket", return_code: 0 });
    } else if (roll < 0.996) {
      yield makeEvent({ ...base, ...tcp, type: "listen", local_port: 1024 + Math.floor(random() * 60000), remote_ip: null, remote_port: null });
    } else if (roll < 0.998) {
      yield makeEvent({ ...base, type: "exec", path: `/usr/bin/${comm}` });
    } else {
      yield makeEvent({ ...base, type: "exit", exit_code: random() < 0.9 ? 0 : 1 });
    }
  }
}

// ---- measuring ----

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Median, p90 and min of the runs, in ms to the µs. */
function summarized(values: number[]): Pick<Stats, "median" | "p90" | "min"> {
  const { median, p90, min } = stats(values)!;
  return { median: round(median, 3), p90: round(p90, 3), min: round(min, 3) };
}

interface Target {
  label: string;
  command: string;
  windowMs: number;
}

interface TargetResult {
  label: string;
  command: string;
  window_min: number;
  /** Events the summary covered (its `events`) and rows in the window (the baseline's count). */
  matched_events: number;
  window_events: number;
  summary_ms: Pick<Stats, "median" | "p90" | "min">;
  baseline_ms: Pick<Stats, "median" | "p90" | "min">;
  ratio: number;
  pass: boolean;
}

/** Runs the summary and the baseline interleaved, so a noisy moment hits both. */
function measure(store: EventStore, target: Target, nowMs: number, runs: number): TargetResult {
  const sinceMs = nowMs - target.windowMs;
  const baseline = store.database.query("SELECT count(*) AS n FROM events WHERE ts_ms >= ?");
  const summaryTimes: number[] = [];
  const baselineTimes: number[] = [];
  let answer: ConnectionSummary | null = null;
  let windowEvents = 0;
  for (let run = 0; run < WARMUP_RUNS + runs; run++) {
    let t0 = performance.now();
    answer = connectionSummary(store, { command: target.command, sinceMs });
    const summaryMs = performance.now() - t0;
    t0 = performance.now();
    windowEvents = (baseline.get(sinceMs) as { n: number }).n;
    const baselineMs = performance.now() - t0;
    if (run >= WARMUP_RUNS) {
      summaryTimes.push(summaryMs);
      baselineTimes.push(baselineMs);
    }
  }
  const summary = summarized(summaryTimes);
  const base = summarized(baselineTimes);
  return {
    label: target.label,
    command: target.command,
    window_min: target.windowMs / 60_000,
    matched_events: answer!.events,
    window_events: windowEvents,
    summary_ms: summary,
    baseline_ms: base,
    ratio: round(summary.median / Math.max(base.median, 0.001)),
    pass: summary.median < GOAL_MS,
  };
}

function databaseBytes(store: EventStore): { total: number; parts: Record<string, number> } {
  const pages = store.database.query("SELECT (SELECT page_count FROM pragma_page_count) * (SELECT page_size FROM pragma_page_size) AS bytes").get() as { bytes: number };
  // dbstat (compiled into Bun's SQLite) gives the bytes of each table and index.
  const parts: Record<string, number> = {};
  for (const row of store.database.query("SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC").all() as { name: string; bytes: number }[]) {
    parts[row.name] = row.bytes;
  }
  return { total: pages.bytes, parts };
}

const MB = 2 ** 20;

/** Adds count events from the generator in chunks, timing only add() and flush(). */
function addTimed(store: EventStore, events: Generator<ConnectionEvent>, count: number): number {
  let elapsedMs = 0;
  for (let added = 0; added < count; ) {
    const chunk: ConnectionEvent[] = [];
    for (let i = 0; i < CHUNK && added + i < count; i++) chunk.push(events.next().value as ConnectionEvent);
    const t0 = performance.now();
    for (const event of chunk) store.add(event);
    store.flush();
    elapsedMs += performance.now() - t0;
    added += chunk.length;
  }
  return elapsedMs;
}

function main(): number {
  const options = parseArgs(process.argv.slice(2));
  const random = seededRandom(42);
  const host = makeHost(random);
  const nowMs = Date.now();
  const targets: Target[] = [
    { label: "mid-popularity, last 10 min", command: host.comms[29]!, windowMs: 10 * 60_000 },
    { label: "most popular, last hour", command: host.comms[0]!, windowMs: 60 * 60_000 },
  ];

  log(`generating and adding ${options.events} events…`);
  const store = new EventStore({ maxEvents: options.events });
  // A minute of margin: the store's 24 h age limit must not drop the first events while loading.
  const insertMs = addTimed(store, generate(options.events, nowMs - DAY_MS + 60_000, nowMs - 60_000, host, random), options.events);
  const stored = store.stats();
  const memory = databaseBytes(store);
  log(`stored ${stored.events} events (${stored.processes} processes) in ${round(insertMs / 1000)} s; measuring…`);

  if (options.save) {
    rmSync(options.save, { force: true });
    store.database.run(`VACUUM INTO '${options.save.replaceAll("'", "''")}'`);
    log(`saved the database to ${options.save}`);
  }

  const inMemory = targets.map((target) => measure(store, target, nowMs, options.runs));

  const dir = mkdtempSync(join(tmpdir(), "ipcscope-bench-events-"));
  let onFile: TargetResult[];
  let fileBytes: number;
  try {
    const path = join(dir, "events.db");
    store.database.run(`VACUUM INTO '${path.replaceAll("'", "''")}'`);
    const fileStore = new EventStore({ path, maxEvents: options.events });
    try {
      fileBytes = Bun.file(path).size;
      onFile = targets.map((target) => measure(fileStore, target, nowMs, options.runs));
    } finally {
      fileStore.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // Steady state: events after now, into the full store; each flush retires as many old ones.
  log(`adding ${STEADY_EVENTS} more events to the full store…`);
  const steadyMs = addTimed(store, generate(STEADY_EVENTS, nowMs, nowMs + STEADY_EVENTS * (DAY_MS / options.events), host, random), STEADY_EVENTS);
  const retired = store.stats().dropped_by_retention;
  store.close();

  const results = { memory: inMemory, file: onFile };
  const pass = [...inMemory, ...onFile].every((result) => result.pass);
  const insert = {
    seconds: round(insertMs / 1000),
    events_per_s: Math.round((stored.events / insertMs) * 1000),
    us_per_event: round((insertMs * 1000) / stored.events, 1),
    steady_events_per_s: Math.round((STEADY_EVENTS / steadyMs) * 1000),
    steady_us_per_event: round((steadyMs * 1000) / STEADY_EVENTS, 1),
    steady_retired: retired,
  };
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({ events: stored.events, processes: stored.processes, runs: options.runs, warmup: WARMUP_RUNS, goal_ms: GOAL_MS, insert, database_bytes: memory.total, database_parts: memory.parts, file_bytes: fileBytes, results, pass }, null, 2)}\n`,
    );
  } else {
    let out = `ipcscope event history: ${stored.events} events, ${stored.processes} processes, ${options.runs} runs per figure (+${WARMUP_RUNS} warm-up), ms median (p90)\n`;
    out += `insert into the empty store: ${insert.events_per_s} events/s, ${insert.us_per_event} µs each (add + flush, ${insert.seconds} s in all)\n`;
    out += `insert at steady state:      ${insert.steady_events_per_s} events/s, ${insert.steady_us_per_event} µs each (${STEADY_EVENTS} into the full store, ${insert.steady_retired} retired)\n`;
    out += `database in memory: ${round(memory.total / MB, 1)} MB (${Object.entries(memory.parts).map(([name, bytes]) => `${name} ${round(bytes / MB, 1)}`).join(", ")})\n`;
    out += `database file: ${round(fileBytes / MB, 1)} MB\n\n`;
    out += "store   target                        command   rows      window rows  summary          baseline        ratio    goal\n";
    for (const [where, list] of Object.entries(results)) {
      for (const result of list) {
        out +=
          `${where.padEnd(8)}${result.label.padEnd(30)}${result.command.padEnd(10)}${String(result.matched_events).padEnd(10)}${String(result.window_events).padEnd(13)}` +
          `${`${result.summary_ms.median} (${result.summary_ms.p90})`.padEnd(17)}${`${result.baseline_ms.median} (${result.baseline_ms.p90})`.padEnd(16)}` +
          `${`${result.ratio}×`.padEnd(9)}${result.pass ? "PASS" : "FAIL"} < ${GOAL_MS} ms\n`;
      }
    }
    out += "\nratio: the summary's median over the baseline's (SELECT count(*) FROM events WHERE ts_ms >= ? over the same window)\n";
    process.stdout.write(out);
  }
  return options.check && !pass ? 1 : 0;
}

process.exit(main());
