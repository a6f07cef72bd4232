#!/usr/bin/env bun
// Events benchmark: what the background monitor (the trace_connections probe under bpftrace, feeding
// the event store) costs a host that makes many short TCP connections, and whether the totals an
// agent reads add up. The load is bench/storm.py: loopback connections one after another (connect,
// 1 byte, the server closes, the client closes), run as /usr/bin/python3. Rows:
//   unpinned  one full-speed storm on any CPU (--storm-cpu any)
//   pinned    one full-speed storm on CPU --storm-cpu only (default 0)
//   two       two full-speed storms at once, both on any CPU (both cores busy)
//   rate      one storm at --rate connections/s, pinned like "pinned": the monitor's CPU
// Each row's storms run without any ipcscope (the baseline) and with a fresh
// `ipcscope serve --http --port 0` (monitor on, probe "running" in /health before the storm), in
// the same run, interleaved (ABBA) for --runs rounds (the rate row: one round). Per monitored storm:
//   - the totals an agent reads: GET /get_connection_summary?pid=<storm client>&since=S → attempts,
//     established, and ?pid=<storm server> → accepted, against the connections the storm made; the
//     answer's lost_events and complete ("n/a" where it has none); list_connections matched (a detail);
//   - lines per connection: the probe's events + lost_events (/health) over the round / connections;
//   - in-kernel ns per connection: with kernel.bpf_stats_enabled=1 for the round (the old value is
//     put back after, also on an error or Ctrl-C), the run_time_ns that `bpftool prog show -j` gives
//     the server's bpftrace's programs, over the round / connections;
//   - rate row: utime+stime (/proc/PID/stat) of the server and of its bpftrace, as % of one core.
//   bun bench/events.ts [--rows a,b] [--seconds S] [--runs N] [--rate R] [--cpu-seconds S] [--storm-cpu C]
//                       [--no-bpf-stats] [--binary PATH] [--json] [--check]
// Run as root (bpftrace, bpf_stats and bpftool need it). Every process this starts (servers, storms,
// bpftool) is waited for or killed by pid, also on an error or Ctrl-C; a server's bpftrace that
// outlives it is reported and killed.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { type BaseOptions, BenchError, DEFAULT_BINARY, PYTHON, type Server, fail, integerOption, log, parseOptions, runMain, sleep } from "./_lib.ts";
import { adopt, runStorm, type StormResult, startServer, stop, tail, track } from "./_lib.ts";
import { fixed, ratio, round, roundStats, type Stats, stats, times } from "./_lib.ts";

/** bpftrace compiles the probe with LLVM before it attaches: seconds, more on a busy 2-core machine. */
const PROBE_READY_TIMEOUT_MS = 60_000;
const HEALTH_POLL_MS = 200;
/** The store writes every 200 ms (DEFAULT_FLUSH_MS); the summary flushes too. A second covers the probe's pipe as well. */
const FLUSH_WAIT_MS = 1_000;
/** The server stops its probe with SIGINT, SIGTERM, SIGKILL 2 s apart, then flushes the store. */
const SERVER_STOP_GRACE_MS = 10_000;
/** How long a server's bpftrace may outlive the server before it counts as left behind. */
const PROBE_EXIT_GRACE_MS = 3_000;
/** Lets the previous round's server finish tearing down before the next storm is timed. */
const ROUND_PAUSE_MS = 1_000;
/** Lets a new server finish its own start-up work (JIT, first store writes) before its storm is timed. */
const SERVER_SETTLE_MS = 1_000;
/** bpftool prog show -j takes milliseconds; this bounds a hung one. */
const BPFTOOL_TIMEOUT_MS = 10_000;

const GOALS = {
  /** Storm connections/s with the monitor / without, medians (unpinned and pinned rows). */
  throughputRatio: 0.85,
  /** How far the unpinned row's summary totals may be off the connections made, as a fraction (the others: exact). */
  unpinnedTolerance: 0.001,
  /** Events lost (ring buffer or the probe's queue), pinned and rate rows. */
  lostEvents: 0,
  /** Server + bpftrace CPU during the rate storm, % of one core, at most. */
  cpuPct: 40,
};

type RowId = "unpinned" | "pinned" | "two" | "rate";
const ROW_IDS: readonly RowId[] = ["unpinned", "pinned", "two", "rate"];

/** One row of the table: what storms run, and how. */
interface Row {
  id: RowId;
  label: string;
  /** storm.py processes at once. */
  storms: number;
  /** The CPU its storms are pinned to (client and server), or null: the scheduler places them. */
  cpu: number | null;
  seconds: number;
  /** Connections/s per storm, or null: full speed. */
  rate: number | null;
  rounds: number;
}

interface Options extends BaseOptions {
  rows: RowId[];
  seconds: number;
  rate: number;
  cpuSeconds: number;
  /** The CPU of the pinned and rate rows. */
  stormCpu: number;
  bpfStats: boolean;
}

const USAGE = `usage: bun bench/events.ts [options]
  --rows a,b        rows to run, of unpinned, pinned, two, rate (default: all)
  --seconds S       length of each full-speed storm (default 5)
  --runs N          rounds of the full-speed rows: storms without and with the server, each (default 3)
  --rate R          connections/s of the rate row's storm (default 5000; 0 skips the row)
  --cpu-seconds S   length of the rate row's storm (default 10)
  --storm-cpu C     the CPU the pinned and rate rows' storms run on (default 0)
  --no-bpf-stats    leave kernel.bpf_stats_enabled alone (no in-kernel ns per connection)
  --binary PATH     ipcscope binary (default dist/ipcscope)
  --json            print one JSON object instead of the table (progress goes to stderr)
  --check           exit 1 if a goal fails or a run errs (default: exit 0 regardless)`;

function parseArgs(argv: string[]): Options {
  const options: Options = { rows: [...ROW_IDS], seconds: 5, runs: 3, rate: 5_000, cpuSeconds: 10, stormCpu: 0, bpfStats: true, binary: DEFAULT_BINARY, json: false, check: false };
  let rowsGiven = false;
  parseOptions(argv, options, USAGE, (flag, value) => {
    switch (flag) {
      case "--rows": {
        const text = value() ?? "";
        const rows = text.split(",").map((r) => r.trim()).filter(Boolean);
        const unknown = rows.filter((r) => !ROW_IDS.includes(r as RowId));
        if (rows.length === 0 || unknown.length > 0) fail(`--rows needs a list of ${ROW_IDS.join(", ")}, got ${JSON.stringify(text)}`);
        options.rows = ROW_IDS.filter((r) => rows.includes(r));
        rowsGiven = true;
        return true;
      }
      case "--seconds": options.seconds = integerOption(flag, value(), 1, 600); return true;
      case "--rate": options.rate = integerOption(flag, value(), 0, 1_000_000); return true;
      case "--cpu-seconds": options.cpuSeconds = integerOption(flag, value(), 1, 600); return true;
      case "--storm-cpu": options.stormCpu = integerOption(flag, value(), 0, availableParallelism() - 1); return true;
      case "--no-bpf-stats": options.bpfStats = false; return true;
      default: return false;
    }
  });
  if (options.rate === 0) {
    if (rowsGiven && options.rows.includes("rate")) fail("--rate 0 skips the rate row, which --rows asks for");
    options.rows = options.rows.filter((r) => r !== "rate");
    if (options.rows.length === 0) fail("no rows left to run");
  }
  return options;
}

function rowsOf(options: Options): Row[] {
  const all: Record<RowId, Row> = {
    unpinned: { id: "unpinned", label: "storm, any CPU", storms: 1, cpu: null, seconds: options.seconds, rate: null, rounds: options.runs },
    pinned: { id: "pinned", label: `storm, CPU ${options.stormCpu}`, storms: 1, cpu: options.stormCpu, seconds: options.seconds, rate: null, rounds: options.runs },
    two: { id: "two", label: "2 storms, any CPU", storms: 2, cpu: null, seconds: options.seconds, rate: null, rounds: options.runs },
    rate: { id: "rate", label: `${options.rate}/s, CPU ${options.stormCpu}`, storms: 1, cpu: options.stormCpu, seconds: options.cpuSeconds, rate: options.rate, rounds: 1 },
  };
  return options.rows.map((id) => all[id]);
}

// ---- the server and its monitor ----

/** The parts of /health's background.monitor this bench reads (see src/events/monitor.ts). */
interface MonitorHealth {
  source: "ebpf" | "ss-poll" | "none";
  probe: { state: string; pid: number | null; events: number; bad_lines: number; lost_events: number; restarts: number; last_error: string | null } | null;
  poll: { running: boolean; polls: number } | null;
  store: { events: number };
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  if (response.status !== 200) throw new BenchError(`GET ${url}: HTTP ${response.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

async function monitorHealth(server: Server): Promise<MonitorHealth | null> {
  const health = await getJson<{ background?: { monitor?: MonitorHealth } }>(`${server.url}/health`);
  return health.background?.monitor ?? null;
}

/** Waits until the probe says "running" (or the monitor settled on ss polling: a warning, the goals will say the rest). */
async function waitForMonitor(server: Server): Promise<MonitorHealth> {
  const started = performance.now();
  let last: MonitorHealth | null = null;
  while (performance.now() - started < PROBE_READY_TIMEOUT_MS) {
    last = await monitorHealth(server);
    if (last?.source === "ebpf" && last.probe?.state === "running") return last;
    if (last?.source === "ss-poll" && (last.poll?.polls ?? 0) > 0) {
      log(`the monitor runs on ss polling, not eBPF (${last.probe?.last_error ?? "no probe"}): short connections will be missed`);
      return last;
    }
    if (server.child.exitCode !== null) break;
    await sleep(HEALTH_POLL_MS);
  }
  const state = last ? `source ${last.source}, probe ${last.probe?.state ?? "none"}${last.probe?.last_error ? `: ${last.probe.last_error}` : ""}` : "no monitor in /health (--no-monitor, or a build without it?)";
  throw new BenchError(`the monitor was not running ${PROBE_READY_TIMEOUT_MS / 1000} s after the server started (${state}; server log: ${tail(server.stderr)})`);
}

/** Whether pid runs (a zombie does not: it is gone, only not yet reaped). */
function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Stops the server (SIGTERM, SIGKILL after the grace) and checks that its bpftrace went with it; returns what went wrong. */
async function stopServer(server: Server, probePid: number | null): Promise<string[]> {
  const problems: string[] = [];
  if (!(await stop(server.child, "SIGTERM", SERVER_STOP_GRACE_MS))) problems.push(`server did not stop within ${SERVER_STOP_GRACE_MS / 1000} s of SIGTERM; killed`);
  if (probePid === null) return problems;
  const started = performance.now();
  while (alive(probePid) && performance.now() - started < PROBE_EXIT_GRACE_MS) await sleep(100);
  if (alive(probePid)) {
    problems.push(`the server's bpftrace (pid ${probePid}) still ran ${PROBE_EXIT_GRACE_MS / 1000} s after the server exited`);
    // Ours by descent: kill it so it does not tax the next round (only if the pid still is a bpftrace).
    try {
      if (readFileSync(`/proc/${probePid}/cmdline`, "utf8").includes("bpftrace")) process.kill(probePid, "SIGKILL");
    } catch {
      // gone in between
    }
  }
  return problems;
}

/** Runs `body` with a fresh server whose monitor runs; then stops the server and checks that its bpftrace went too. */
async function withServer<T>(errors: string[], binary: string, body: (server: Server, probePid: number | null) => Promise<T>): Promise<T> {
  const server = await startServer(binary);
  let probePid: number | null = null;
  let release = () => {};
  try {
    probePid = (await waitForMonitor(server)).probe?.pid ?? null;
    // On Ctrl-C the server is SIGKILLed, and a SIGKILLed server can leave its bpftrace running: kill that too.
    if (probePid !== null) release = adopt(probePid, "bpftrace");
    await sleep(SERVER_SETTLE_MS);
    return await body(server, probePid);
  } finally {
    errors.push(...(await stopServer(server, probePid)));
    release();
  }
}

// ---- what an agent reads: the summary ----

/** The fields of get_connection_summary this bench reads; lost_events and complete are newer than some builds. */
interface SummaryAnswer {
  attempts?: number;
  established?: number;
  accepted?: number;
  lost_events?: unknown;
  complete?: unknown;
}

/** What the answer says about lost lines: null each where the answer has no such field. */
interface AnswerLoss {
  lost_events: number | null;
  complete: boolean | null;
}

const lossOf = (answer: SummaryAnswer): AnswerLoss => ({
  lost_events: typeof answer.lost_events === "number" ? answer.lost_events : null,
  complete: typeof answer.complete === "boolean" ? answer.complete : null,
});

async function summary(server: Server, pid: number, since: number): Promise<SummaryAnswer> {
  const answer = await getJson<SummaryAnswer>(`${server.url}/get_connection_summary?pid=${pid}&since=${since}`);
  for (const field of ["attempts", "established", "accepted"] as const) {
    if (typeof answer[field] !== "number") throw new BenchError(`get_connection_summary answered without "${field}": ${JSON.stringify(answer).slice(0, 300)}`);
  }
  return answer;
}

/** How many connect events of this pid the store holds, via the REST mirror of list_connections (a detail). */
async function matchedConnects(server: Server, pid: number, since: number): Promise<number> {
  const answer = await getJson<{ matched?: number }>(`${server.url}/list_connections?pid=${pid}&type=connect&since=${since}&limit=1`);
  if (typeof answer.matched !== "number") throw new BenchError(`list_connections answered without "matched": ${JSON.stringify(answer).slice(0, 300)}`);
  return answer.matched;
}

/** One storm under the monitor and what the server's answers say of it. */
interface StormTally {
  storm: StormResult;
  /** get_connection_summary?pid=<client>. */
  attempts: number;
  established: number;
  /** get_connection_summary?pid=<storm server>. */
  accepted: number;
  /** list_connections?pid=<client>&type=connect → matched. */
  matched: number;
  /** lost_events / complete of the client's answer and of the storm server's. */
  client_answer: AnswerLoss;
  server_answer: AnswerLoss;
}

/** The totals of a tally, against the connections made: what each is off by (0: exact). */
function offsets(t: StormTally): { attempts: number; established: number; accepted: number } {
  // A connection that failed after the connect or the accept (a storm error) may be counted too: allowed on top.
  const off = (value: number) => (value < t.storm.connections ? value - t.storm.connections : Math.max(0, value - t.storm.connections - t.storm.errors));
  return { attempts: off(t.attempts), established: off(t.established), accepted: off(t.accepted) };
}

/** The largest offset of a tally's totals, relative to the connections made (signed), and its count. */
function worstOffset(t: StormTally): { count: number; fraction: number } {
  const all = Object.values(offsets(t));
  const count = all.reduce((w, o) => (Math.abs(o) > Math.abs(w) ? o : w), 0);
  return { count, fraction: t.storm.connections > 0 ? count / t.storm.connections : count === 0 ? 0 : 1 };
}

/** Whether every total is within `tolerance` (a fraction of the connections made) of them. */
const withinTolerance = (t: StormTally, tolerance: number) => Object.values(offsets(t)).every((o) => Math.abs(o) <= Math.floor(tolerance * t.storm.connections));

/** Whether an answer that says complete: true is right to (its totals exact, nothing lost). */
function honest(t: StormTally): boolean {
  const o = offsets(t);
  const clientOk = t.client_answer.complete !== true || (o.attempts === 0 && o.established === 0 && (t.client_answer.lost_events ?? 0) === 0);
  const serverOk = t.server_answer.complete !== true || (o.accepted === 0 && (t.server_answer.lost_events ?? 0) === 0);
  return clientOk && serverOk;
}

const reported = (t: StormTally) => [t.client_answer, t.server_answer].every((a) => a.lost_events !== null && a.complete !== null);

// ---- in the kernel: bpf_stats and bpftool ----

const BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled";
/** The value to put back, while this bench has kernel.bpf_stats_enabled changed; null otherwise. */
let bpfStatsRestore: string | null = null;

/** Sets kernel.bpf_stats_enabled=1 (keeping the old value for restoreBpfStats); false if it cannot. */
function enableBpfStats(): boolean {
  try {
    const old = readFileSync(BPF_STATS, "utf8").trim();
    if (old !== "1") {
      bpfStatsRestore = old;
      writeFileSync(BPF_STATS, "1");
    }
    return true;
  } catch (error) {
    bpfStatsRestore = null;
    log(`cannot set kernel.bpf_stats_enabled=1 (${(error as Error).message}): no in-kernel ns per connection`);
    return false;
  }
}

/** Puts kernel.bpf_stats_enabled back as it was; also on the way out (error, Ctrl-C: the signal handlers exit). */
function restoreBpfStats(): void {
  if (bpfStatsRestore === null) return;
  try {
    writeFileSync(BPF_STATS, bpfStatsRestore);
  } catch (error) {
    process.stderr.write(`bench/events: could not restore kernel.bpf_stats_enabled=${bpfStatsRestore}: ${(error as Error).message}\n`);
  }
  bpfStatsRestore = null;
}
process.on("exit", restoreBpfStats);

/** The ids of the BPF programs a process holds open (its /proc/PID/fdinfo entries with a prog_id). */
function progIdsOf(pid: number): Set<number> {
  const ids = new Set<number>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
      try {
        const id = /^prog_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"));
        if (id) ids.add(Number(id[1]));
      } catch {
        // closed in between
      }
    }
  } catch {
    // gone
  }
  return ids;
}

/** What this bench reads of `bpftool prog show -j`. */
interface BpfProg {
  id: number;
  run_time_ns?: number;
  run_cnt?: number;
  pids?: { pid: number }[];
}

const BPFTOOL = Bun.which("bpftool");

/** `bpftool prog show -j` (tracked, bounded), or null with the reason logged. */
async function bpftoolProgs(): Promise<BpfProg[] | null> {
  if (!BPFTOOL) return null;
  const child = track(Bun.spawn([BPFTOOL, "prog", "show", "-j"], { stdin: "ignore", stdout: "pipe", stderr: "pipe" }));
  const output = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  let timer: Timer | undefined;
  const ended = await Promise.race([child.exited, new Promise<"timeout">((done) => (timer = setTimeout(() => done("timeout"), BPFTOOL_TIMEOUT_MS)))]);
  clearTimeout(timer);
  if (ended === "timeout") {
    await stop(child, "SIGTERM", 1_000);
    log(`bpftool prog show -j still ran after ${BPFTOOL_TIMEOUT_MS / 1000} s; killed`);
    return null;
  }
  const [stdout, stderr] = await output;
  try {
    if (ended !== 0) throw new Error(stderr.trim().slice(0, 200) || `exit ${ended}`);
    return JSON.parse(stdout) as BpfProg[];
  } catch (error) {
    log(`bpftool prog show -j: ${(error as Error).message}`);
    return null;
  }
}

/** Run time and runs so far of the programs of bpftrace `pid` (by bpftool's pids, or the ids in its fdinfo). */
async function kernelTime(pid: number, ids: Set<number>): Promise<{ ns: number; runs: number; programs: number } | null> {
  const progs = await bpftoolProgs();
  if (progs === null) return null;
  const ours = progs.filter((p) => ids.has(p.id) || (p.pids ?? []).some((holder) => holder.pid === pid));
  return {
    ns: ours.reduce((n, p) => n + (p.run_time_ns ?? 0), 0), // bpftool leaves both out while they are 0
    runs: ours.reduce((n, p) => n + (p.run_cnt ?? 0), 0),
    programs: ours.length,
  };
}

/** Records the bpftrace processes running now other than `ours`: another probe on the host slows the storms too (with and without). */
const foreignProbes = new Set<number>();
function noteForeignProbes(ours: number | null): void {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === ours) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === "bpftrace") foreignProbes.add(Number(entry));
    } catch {
      // gone
    }
  }
}

// ---- CPU ----

const CLOCK_TICKS = (() => {
  const ticks = Number(Bun.spawnSync(["getconf", "CLK_TCK"], { stdout: "pipe", stderr: "ignore" }).stdout.toString().trim());
  return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
})();

/** utime + stime of a process (all its threads), in seconds; null once it is gone. */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count fields from the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // fields 14 and 15: utime, stime
  } catch {
    return null;
  }
}

// ---- the rounds ----

interface Baseline {
  row: RowId;
  round: number;
  storms: StormResult[];
  /** Connections/s of all its storms together. */
  per_second: number;
}

interface CpuUse {
  window_s: number;
  server_pct: number;
  bpftrace_pct: number | null;
  total_pct: number;
}

interface Monitored {
  row: RowId;
  round: number;
  source: MonitorHealth["source"];
  storms: StormTally[];
  per_second: number;
  /** Connections all its storms made. */
  connections: number;
  /** The probe's events + lost_events over the round (/health, before the storm and after the flush). */
  lines: number;
  lost_events: number;
  lines_per_connection: number | null;
  /** bpf run time of the server's bpftrace's programs over the storm; null without bpf_stats or bpftool. */
  kernel_ns: number | null;
  kernel_runs: number | null;
  kernel_programs: number | null;
  kernel_ns_per_connection: number | null;
  cpu: CpuUse | null;
}

const sumPerSecond = (storms: StormResult[]) => round(storms.reduce((n, s) => n + s.per_second, 0));

/** The row's storms, all at once. */
const runStorms = (row: Row) => Promise.all(Array.from({ length: row.storms }, () => runStorm(row.seconds, row.cpu, row.rate ?? undefined)));

async function baselineRound(row: Row, index: number, errors: string[]): Promise<Baseline> {
  noteForeignProbes(null);
  const storms = await runStorms(row);
  noteForeignProbes(null);
  for (const s of storms) if (s.errors > 0) errors.push(`storm pid ${s.pid}: ${s.errors} connection(s) failed`);
  return { row: row.id, round: index, storms, per_second: sumPerSecond(storms) };
}

/** The row's storms with a fresh server: throughput, the totals it answers, lines, in-kernel time and (rate row) CPU. */
function monitoredRound(row: Row, index: number, options: Options, errors: string[]): Promise<Monitored> {
  return withServer(errors, options.binary, async (server, probePid) => {
    const ids = probePid === null ? new Set<number>() : progIdsOf(probePid);
    const before = await monitorHealth(server);
    const withStats = options.bpfStats && probePid !== null && BPFTOOL !== null && enableBpfStats();
    let storms: StormResult[];
    let kernel: { ns: number; runs: number; programs: number } | null = null;
    let cpu: CpuUse | null = null;
    const startedAt = Date.now();
    try {
      const kernel0 = withStats ? await kernelTime(probePid!, ids) : null;
      const t0 = performance.now();
      const server0 = cpuSeconds(server.child.pid);
      const probe0 = probePid === null ? null : cpuSeconds(probePid);
      noteForeignProbes(probePid);
      storms = await runStorms(row);
      noteForeignProbes(probePid);
      const server1 = cpuSeconds(server.child.pid);
      const probe1 = probePid === null ? null : cpuSeconds(probePid);
      const window = (performance.now() - t0) / 1000;
      const kernel1 = kernel0 ? await kernelTime(probePid!, ids) : null;
      if (kernel0 && kernel1) kernel = { ns: kernel1.ns - kernel0.ns, runs: kernel1.runs - kernel0.runs, programs: kernel1.programs };
      if (row.rate !== null) {
        if (server0 === null || server1 === null) throw new BenchError(`the server (pid ${server.child.pid}) exited during the rate storm: ${tail(server.stderr)}`);
        if (probePid !== null && (probe0 === null || probe1 === null)) errors.push(`bpftrace (pid ${probePid}) exited during the rate storm: its CPU is not counted`);
        const pct = (a: number | null, b: number | null) => (a === null || b === null ? null : round((100 * (b - a)) / window));
        const serverPct = pct(server0, server1)!;
        const probePct = pct(probe0, probe1);
        cpu = { window_s: round(window, 2), server_pct: serverPct, bpftrace_pct: probePct, total_pct: round(serverPct + (probePct ?? 0)) };
        const reached = sumPerSecond(storms);
        if (reached < 0.95 * row.rate) log(`the storm reached only ${reached} connections/s of the ${row.rate} asked for: one Python process cannot go faster here`);
      }
    } finally {
      restoreBpfStats();
    }
    await sleep(FLUSH_WAIT_MS);
    const since = Math.ceil((Date.now() - startedAt) / 1000) + 10;
    const tallies: StormTally[] = [];
    for (const storm of storms) {
      const client = await summary(server, storm.pid, since);
      const acceptor = await summary(server, storm.server_pid, since);
      tallies.push({
        storm,
        attempts: client.attempts!,
        established: client.established!,
        accepted: acceptor.accepted!,
        matched: await matchedConnects(server, storm.pid, since),
        client_answer: lossOf(client),
        server_answer: lossOf(acceptor),
      });
      if (storm.errors > 0) errors.push(`storm pid ${storm.pid}: ${storm.errors} connection(s) failed`);
    }
    const after = await monitorHealth(server);
    const probe = after?.probe ?? null;
    if (probe && probe.restarts > 0) errors.push(`the probe restarted ${probe.restarts} time(s) (last error: ${probe.last_error})`);
    if (probe && probe.bad_lines > 0) errors.push(`the probe printed ${probe.bad_lines} bad line(s) (see the server log)`);
    const lost = (probe?.lost_events ?? 0) - (before?.probe?.lost_events ?? 0);
    const lines = (probe?.events ?? 0) + (probe?.lost_events ?? 0) - (before?.probe?.events ?? 0) - (before?.probe?.lost_events ?? 0);
    const connections = storms.reduce((n, s) => n + s.connections, 0);
    const per = (n: number | null, digits: number) => (n === null || connections === 0 ? null : round(n / connections, digits));
    return {
      row: row.id,
      round: index,
      source: after?.source ?? "none",
      storms: tallies,
      per_second: sumPerSecond(storms),
      connections,
      lines,
      lost_events: lost,
      lines_per_connection: per(lines, 2),
      kernel_ns: kernel?.ns ?? null,
      kernel_runs: kernel?.runs ?? null,
      kernel_programs: kernel?.programs ?? null,
      kernel_ns_per_connection: per(kernel?.ns ?? null, 0),
      cpu,
    };
  });
}

// ---- results ----

interface RowResult {
  row: Row;
  without: Baseline[];
  with: Monitored[];
  medians: { without: Stats | null; with: Stats | null };
  throughput_ratio: number | null;
  /** Pooled over the rounds: all lines (or ns) / all connections. */
  lines_per_connection: number | null;
  kernel_ns_per_connection: number | null;
  lost_events: number;
}

function rowResult(row: Row, without: Baseline[], withs: Monitored[]): RowResult {
  const medians = { without: roundStats(stats(without.map((b) => b.per_second))), with: roundStats(stats(withs.map((m) => m.per_second))) };
  const connections = withs.reduce((n, m) => n + m.connections, 0);
  const kernelRounds = withs.filter((m) => m.kernel_ns !== null);
  const kernelConnections = kernelRounds.reduce((n, m) => n + m.connections, 0);
  return {
    row,
    without,
    with: withs,
    medians,
    throughput_ratio: ratio(medians.with?.median, medians.without?.median),
    lines_per_connection: connections > 0 ? round(withs.reduce((n, m) => n + m.lines, 0) / connections, 2) : null,
    kernel_ns_per_connection: kernelConnections > 0 ? round(kernelRounds.reduce((n, m) => n + m.kernel_ns!, 0) / kernelConnections, 0) : null,
    lost_events: withs.reduce((n, m) => n + m.lost_events, 0),
  };
}

interface Goal {
  row: RowId;
  name: string;
  shown: string;
  limit: string;
  pass: boolean;
}

const tallies = (r: RowResult) => r.with.flatMap((m) => m.storms);

/** "exact", or the worst offset of any total in any storm of the row: "-37 (-0.05%)". */
function totalsShown(r: RowResult): string {
  const all = tallies(r);
  if (all.length === 0) return "n/a";
  const worst = all.map(worstOffset).reduce((w, o) => (Math.abs(o.fraction) > Math.abs(w.fraction) ? o : w));
  if (worst.count === 0) return "exact";
  return `${worst.count > 0 ? "+" : ""}${worst.count} (${worst.count > 0 ? "+" : ""}${(100 * worst.fraction).toFixed(2)}%)`;
}

/** The answers' lost_events/complete of a row: "n/a" when an answer lacks them, else "lost N, complete yes|no". */
function answerShown(r: RowResult): string {
  const all = tallies(r);
  if (all.length === 0) return "n/a";
  if (!all.every(reported)) return "n/a";
  const answers = all.flatMap((t) => [t.client_answer, t.server_answer]);
  const lost = Math.max(...answers.map((a) => a.lost_events!));
  const complete = answers.every((a) => a.complete) ? "yes" : answers.some((a) => a.complete) ? "some" : "no";
  return `lost ${lost}, complete ${complete}`;
}

function goalsOf(results: RowResult[]): Goal[] {
  const goals: Goal[] = [];
  for (const r of results) {
    const id = r.row.id;
    const all = tallies(r);
    const throughput = (): Goal => ({ row: id, name: "throughput with / without", shown: times(r.throughput_ratio), limit: `>= ${GOALS.throughputRatio}x`, pass: r.throughput_ratio !== null && r.throughput_ratio >= GOALS.throughputRatio });
    const totals = (tolerance: number): Goal => ({
      row: id,
      name: r.row.storms > 1 ? "summary totals, each storm" : "summary totals",
      shown: totalsShown(r),
      limit: tolerance === 0 ? "exact" : `within ${100 * tolerance}%`,
      pass: all.length > 0 && all.every((t) => withinTolerance(t, tolerance)),
    });
    const lost = (): Goal => ({ row: id, name: "lost events", shown: String(r.lost_events), limit: String(GOALS.lostEvents), pass: r.with.length > 0 && r.lost_events <= GOALS.lostEvents });
    switch (id) {
      case "unpinned": goals.push(throughput(), totals(GOALS.unpinnedTolerance)); break;
      case "pinned": goals.push(throughput(), totals(0), lost()); break;
      case "two":
        goals.push(totals(0), {
          row: id,
          name: "lost lines reported in the answer",
          shown: answerShown(r),
          limit: "lost_events, complete, honest",
          pass: all.length > 0 && all.every((t) => reported(t) && honest(t)),
        });
        break;
      case "rate": {
        const cpu = r.with[0]?.cpu ?? null;
        goals.push({ row: id, name: "CPU, server + bpftrace", shown: cpu ? `${fixed(cpu.total_pct)}%` : "n/a", limit: `<= ${GOALS.cpuPct}% of a core`, pass: cpu !== null && cpu.total_pct <= GOALS.cpuPct }, lost());
        break;
      }
    }
  }
  return goals;
}

function table(options: Options, results: RowResult[], goals: Goal[]): string {
  const cells = (widths: number[]) => (values: string[]) => `${values.map((v, i) => (i === 0 ? v.padEnd(widths[0]!) : v.padStart(widths[i]!))).join("")}\n`;
  const signed = (n: number) => (n > 0 ? `+${n}` : String(n));
  const source = results.flatMap((r) => r.with)[0]?.source ?? "n/a";
  let out = `ipcscope events: bench/storm.py on 127.0.0.1, without any ipcscope and with a fresh \`${options.binary} serve --http --port 0\`\n`;
  out += `(monitor on: source ${source}), interleaved (ABBA); full-speed storms ${options.seconds} s x ${options.runs} rounds\n`;
  out += `totals from get_connection_summary (attempts, established for the client pid; accepted for the storm's server pid),\n`;
  out += `shown as the offset from the connections made (0: exact); matched: list_connections connects\n\n`;

  const storm = cells([22, 10, 10, 9, 9, 7, 9, 9, 8, 15]);
  out += storm(["row, round", "without", "with", "made", "attempts", "estab", "accepted", "matched", "lost", "answer"]);
  out += storm(["", "(conn/s)", "(conn/s)", "(with)", "(off)", "(off)", "(off)", "(off)", "events", "lost/complete"]);
  for (const r of results) {
    for (const m of r.with) {
      const base = r.without.find((b) => b.round === m.round);
      m.storms.forEach((t, k) => {
        const o = offsets(t);
        const name = `${r.row.label} ${m.round}${m.storms.length > 1 ? "abcdefgh"[k] : ""}`;
        const a = t.client_answer;
        const answer = a.lost_events === null && a.complete === null ? "n/a" : `${a.lost_events ?? "n/a"}/${a.complete ?? "n/a"}`;
        out += storm([name, fixed(base?.storms[k]?.per_second), fixed(t.storm.per_second), String(t.storm.connections), signed(o.attempts), signed(o.established), signed(o.accepted), signed(t.matched - t.storm.connections), k === 0 ? String(m.lost_events) : "", answer]);
      });
    }
  }

  out += "\n";
  const summaryRow = cells([22, 10, 10, 8, 9, 9, 18, 8, 22]);
  out += summaryRow(["row", "without", "with", "ratio", "lines", "kernel", "totals", "lost", "answer"]);
  out += summaryRow(["", "(median)", "(median)", "", "/conn", "ns/conn", "(worst off)", "events", "lost_events/complete"]);
  for (const r of results) {
    out += summaryRow([r.row.label, fixed(r.medians.without?.median), fixed(r.medians.with?.median), times(r.throughput_ratio), fixed(r.lines_per_connection, 2), fixed(r.kernel_ns_per_connection, 0), totalsShown(r), String(r.lost_events), answerShown(r)]);
  }
  const rate = results.find((r) => r.row.id === "rate");
  const cpu = rate?.with[0]?.cpu;
  if (rate && cpu) {
    const reached = rate.with[0]!.per_second;
    const bpftrace = cpu.bpftrace_pct === null ? "n/a (no probe)" : `${fixed(cpu.bpftrace_pct)}%`;
    out += `\nCPU during the storm at ${rate.row.rate}/s for ${rate.row.seconds} s (reached ${fixed(reached)}/s; without ipcscope ${fixed(rate.without[0]?.per_second)}/s), % of one core over ${fixed(cpu.window_s, 2)} s:\n`;
    out += `ipcscope server ${fixed(cpu.server_pct)}%, bpftrace ${bpftrace}, together ${fixed(cpu.total_pct)}%\n`;
    if (reached < 0.95 * rate.row.rate!) out += `(one Python process could not reach ${rate.row.rate}/s here: the figure is for ${fixed(reached)}/s)\n`;
  }
  if (foreignProbes.size > 0) out += `\nother bpftrace processes ran during the storms (pids ${[...foreignProbes].join(", ")}): their probes slow the storms too\n`;
  if (!options.bpfStats) out += "\n(--no-bpf-stats: no in-kernel ns per connection)\n";
  else if (results.some((r) => r.with.length > 0 && r.kernel_ns_per_connection === null)) out += "\n(kernel ns/conn n/a: bpf_stats or bpftool unavailable, see stderr)\n";

  out += "\ngoals:\n";
  const labels = new Map(results.map((r) => [r.row.id, r.row.label]));
  for (const g of goals) out += `  ${g.pass ? "PASS" : "FAIL"}  ${labels.get(g.row)!.padEnd(20)} ${g.name.padEnd(34)} ${g.shown.padStart(22)}  (goal ${g.limit})\n`;
  return out;
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  if (!existsSync(options.binary)) fail(`${options.binary} does not exist: run scripts/build (or pass --binary PATH)`);
  if (!existsSync(PYTHON)) fail(`${PYTHON} is needed for bench/storm.py`);
  if (process.geteuid?.() !== 0) log("not root: the monitor cannot load its probe and falls back to ss polling (the goals are for eBPF)");
  if (options.bpfStats && !BPFTOOL) log("bpftool is not on PATH: no in-kernel ns per connection");

  const rows = rowsOf(options);
  const errors: string[] = [];
  const without = new Map<RowId, Baseline[]>(rows.map((r) => [r.id, []]));
  const withs = new Map<RowId, Monitored[]>(rows.map((r) => [r.id, []]));
  const step = async (row: Row, i: number, monitored: boolean) => {
    if (monitored) {
      const m = await monitoredRound(row, i + 1, options, errors);
      withs.get(row.id)!.push(m);
      const totals = m.storms.map((t) => `${t.attempts}/${t.established}/${t.accepted} of ${t.storm.connections}`).join(", ");
      log(`${row.label}, round ${i + 1} with:    ${m.per_second} conn/s, attempts/established/accepted ${totals}, ${m.lines_per_connection} lines/conn, ${m.kernel_ns_per_connection ?? "n/a"} ns/conn, ${m.lost_events} lost${m.cpu ? `, CPU ${m.cpu.total_pct}%` : ""}`);
    } else {
      const b = await baselineRound(row, i + 1, errors);
      without.get(row.id)!.push(b);
      log(`${row.label}, round ${i + 1} without: ${b.per_second} conn/s`);
    }
    await sleep(ROUND_PAUSE_MS);
  };
  const maxRounds = Math.max(...rows.map((r) => r.rounds));
  log(`rows ${rows.map((r) => r.id).join(", ")}: storms without and with a fresh server, ABBA order`);
  for (let i = 0; i < maxRounds; i++) {
    // ABBA per row: the order alternates, so a drift of the machine over the run hits both alike.
    for (const row of rows) {
      if (i >= row.rounds) continue;
      for (const monitored of i % 2 === 0 ? [false, true] : [true, false]) await step(row, i, monitored);
    }
  }
  for (const m of [...withs.values()].flat()) if (m.source !== "ebpf") errors.push(`the monitor ran on ${m.source}, not eBPF (${m.row}, round ${m.round})`);

  const results = rows.map((row) => rowResult(row, without.get(row.id)!, withs.get(row.id)!));
  const goals = goalsOf(results);
  const pass = goals.every((g) => g.pass);
  if (options.json) {
    const result = { seconds: options.seconds, runs: options.runs, rate: options.rate, cpu_seconds: options.cpuSeconds, storm_cpu: options.stormCpu, bpf_stats: options.bpfStats, binary: options.binary, rows: results, foreign_bpftrace_pids: [...foreignProbes], goals, pass, errors: errors.length };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    process.stdout.write(table(options, results, goals));
  }
  for (const error of errors) log(`error: ${error}`);
  return options.check && (!pass || errors.length > 0) ? 1 : 0;
}

await runMain(main);
