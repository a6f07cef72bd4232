#!/usr/bin/env bun
// Events benchmark: what the background monitor (the trace_connections probe under bpftrace, feeding
// the event store) costs a host that makes many short TCP connections, and whether it records them
// all. The load is bench/storm.py: loopback connections one after another (connect, 1 byte, the
// server closes, the client closes), run as /usr/bin/python3.
//   1. throughput: the storm at full speed for --seconds, without any ipcscope running and with a
//      fresh `ipcscope serve --http --port 0` (monitor on, probe "running" in /health before the
//      storm starts), interleaved (ABBA) for --runs rounds each; the medians and their ratio.
//   2. completeness: after each storm with the server, GET /list_connections?pid=<storm pid>&type=connect
//      → matched, against the connections the storm made; and lost_events from /health.
//   3. CPU: a storm at --rate connections/s for --cpu-seconds; utime+stime (/proc/PID/stat) of the
//      server and of its bpftrace over the storm, as % of one core, and the rate the storm reached.
//   bun bench/events.ts [--seconds S] [--runs N] [--rate R] [--cpu-seconds S] [--storm-cpu C|any] [--binary PATH] [--json] [--check]
// Every storm runs on one CPU (--storm-cpu, default 0): a ping-pong storm spread over two CPUs
// spends most of its time waking the other one, and ran ~25% *faster* with the monitor on than
// without it here, only because the monitor kept the other CPU awake (see storm.py).
// Run as root (bpftrace needs it). Every process this starts (servers, storms) is waited for or
// killed by pid, also on an error or Ctrl-C; a server's bpftrace that outlives it is reported and killed.
import { existsSync, readFileSync } from "node:fs";
import { type BaseOptions, BenchError, DEFAULT_BINARY, PYTHON, type Server, fail, integerOption, log, parseOptions, runMain, sleep } from "./_lib.ts";
import { adopt, runStorm, stormCpuOption, type StormResult, startServer, stop, tail } from "./_lib.ts";
import { type Stats, fixed, ratio, round, roundStats, stats, times } from "./_lib.ts";

/** bpftrace compiles the probe with LLVM before it attaches: seconds, more on a busy 2-core machine. */
const PROBE_READY_TIMEOUT_MS = 60_000;
const HEALTH_POLL_MS = 200;
/** The store writes every 200 ms (DEFAULT_FLUSH_MS); list_connections flushes too. A second covers the probe's pipe as well. */
const FLUSH_WAIT_MS = 1_000;
/** The server stops its probe with SIGINT, SIGTERM, SIGKILL 2 s apart, then flushes the store. */
const SERVER_STOP_GRACE_MS = 10_000;
/** How long a server's bpftrace may outlive the server before it counts as left behind. */
const PROBE_EXIT_GRACE_MS = 3_000;
/** Lets the previous round's server finish tearing down before the next storm is timed. */
const ROUND_PAUSE_MS = 1_000;
/** Lets a new server finish its own start-up work (JIT, first store writes) before its storm is timed. */
const SERVER_SETTLE_MS = 1_000;

const GOALS = {
  /** Storm connections/s with the monitor / without, medians. */
  throughputRatio: 0.85,
  /** Connect events recorded for the storm's pid / connections it made, in every storm with the server (shown; the check is exact). */
  recordedPct: 100,
  /** Events the kernel's ring buffer dropped, all rounds together. */
  lostEvents: 0,
  /** Server + bpftrace CPU during the --rate storm, % of one core. */
  cpuPct: 60,
};

interface Options extends BaseOptions {
  seconds: number;
  rate: number;
  cpuSeconds: number;
  /** The CPU every storm is pinned to (see storm.py), or null to let the scheduler place it. */
  stormCpu: number | null;
}

const USAGE = `usage: bun bench/events.ts [options]
  --seconds S       length of each full-speed storm (default 5)
  --runs N          rounds: storms without and with the server, each (default 3)
  --rate R          connections/s of the CPU storm (default 5000; 0 skips the CPU part)
  --cpu-seconds S   length of the CPU storm (default 10)
  --storm-cpu C     run every storm (client and server) on CPU C only (default 0), or "any"
  --binary PATH     ipcscope binary (default dist/ipcscope)
  --json            print one JSON object instead of the table (progress goes to stderr)
  --check           exit 1 if a goal fails or a run errs (default: exit 0 regardless)`;

function parseArgs(argv: string[]): Options {
  const options: Options = { seconds: 5, runs: 3, rate: 5_000, cpuSeconds: 10, stormCpu: 0, binary: DEFAULT_BINARY, json: false, check: false };
  return parseOptions(argv, options, USAGE, (flag, value) => {
    switch (flag) {
      case "--seconds": options.seconds = integerOption(flag, value(), 1, 600); return true;
      case "--rate": options.rate = integerOption(flag, value(), 0, 1_000_000); return true;
      case "--cpu-seconds": options.cpuSeconds = integerOption(flag, value(), 1, 600); return true;
      case "--storm-cpu": options.stormCpu = stormCpuOption(flag, value()); return true;
      default: return false;
    }
  });
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

/** How many events of this pid and type the store holds, via the REST mirror of list_connections. */
async function recordedEvents(server: Server, pid: number, type: "connect" | "accept", sinceSeconds: number): Promise<number> {
  const answer = await getJson<{ matched?: number }>(`${server.url}/list_connections?pid=${pid}&type=${type}&since=${sinceSeconds}&limit=1`);
  if (typeof answer.matched !== "number") throw new BenchError(`list_connections answered without "matched": ${JSON.stringify(answer).slice(0, 300)}`);
  return answer.matched;
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

/** What the monitor recorded of one storm, and the probe's counters after it. */
interface Recorded {
  source: MonitorHealth["source"];
  /** Connect events with the storm client's pid. */
  recorded: number;
  recorded_pct: number | null;
  /** Accept events with the storm server's pid: shown, not a goal. */
  accepts_recorded: number;
  lost_events: number;
  bad_lines: number;
  restarts: number;
}

interface WithRound extends Recorded {
  storm: StormResult;
}

interface CpuResult extends Recorded {
  rate: number;
  storm: StormResult;
  window_s: number;
  server_pct: number;
  bpftrace_pct: number | null;
  total_pct: number;
}

/** Runs `body` with a fresh server whose monitor runs; then stops the server and checks that its bpftrace went too. */
async function withServer<T>(options: Options, errors: string[], body: (server: Server, probePid: number | null) => Promise<T>): Promise<T> {
  const server = await startServer(options.binary);
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

/** part / whole in %, two decimals, rounded away from 100 so that one missed event in 100k does not show as 100.00. */
function percentOf(part: number, whole: number): number | null {
  if (whole === 0) return null;
  const pct = (10_000 * part) / whole;
  return (part < whole ? Math.floor(pct) : Math.ceil(pct)) / 100;
}

/** Waits for the store, then asks the server what it recorded of the storm that started at startedAt. */
async function recordedOf(server: Server, storm: StormResult, startedAt: number, errors: string[]): Promise<Recorded> {
  await sleep(FLUSH_WAIT_MS);
  const since = Math.ceil((Date.now() - startedAt) / 1000) + 10;
  const recorded = await recordedEvents(server, storm.pid, "connect", since);
  const accepts = await recordedEvents(server, storm.server_pid, "accept", since);
  const health = await monitorHealth(server);
  const probe = health?.probe ?? null;
  if (storm.errors > 0) errors.push(`storm pid ${storm.pid}: ${storm.errors} connection(s) failed`);
  if (probe && probe.restarts > 0) errors.push(`the probe restarted ${probe.restarts} time(s) (last error: ${probe.last_error})`);
  if (probe && probe.bad_lines > 0) errors.push(`the probe printed ${probe.bad_lines} bad line(s) (see the server log)`);
  return {
    source: health?.source ?? "none",
    recorded,
    recorded_pct: percentOf(recorded, storm.connections),
    accepts_recorded: accepts,
    lost_events: probe?.lost_events ?? 0,
    bad_lines: probe?.bad_lines ?? 0,
    restarts: probe?.restarts ?? 0,
  };
}

/** One full-speed storm with a fresh server: its throughput, and what the monitor recorded of it. */
const withRound = (options: Options, errors: string[]): Promise<WithRound> =>
  withServer(options, errors, async (server) => {
    const startedAt = Date.now();
    const storm = await runStorm(options.seconds, options.stormCpu);
    return { storm, ...(await recordedOf(server, storm, startedAt, errors)) };
  });

/** The --rate storm with a fresh server, and the CPU the server and its bpftrace spent meanwhile. */
const cpuRound = (options: Options, errors: string[]): Promise<CpuResult> =>
  withServer(options, errors, async (server, probePid) => {
    const startedAt = Date.now();
    const t0 = performance.now();
    const server0 = cpuSeconds(server.child.pid);
    const probe0 = probePid === null ? null : cpuSeconds(probePid);
    const storm = await runStorm(options.cpuSeconds, options.stormCpu, options.rate);
    const server1 = cpuSeconds(server.child.pid);
    const probe1 = probePid === null ? null : cpuSeconds(probePid);
    const window = (performance.now() - t0) / 1000;
    if (server0 === null || server1 === null) throw new BenchError(`the server (pid ${server.child.pid}) exited during the CPU storm: ${tail(server.stderr)}`);
    if (probePid !== null && (probe0 === null || probe1 === null)) errors.push(`bpftrace (pid ${probePid}) exited during the CPU storm: its CPU is not counted`);
    if (storm.per_second < 0.95 * options.rate) log(`the storm reached only ${storm.per_second} connections/s of the ${options.rate} asked for: one Python process cannot go faster here`);
    const pct = (a: number | null, b: number | null) => (a === null || b === null ? null : round((100 * (b - a)) / window));
    const serverPct = pct(server0, server1)!;
    const probePct = pct(probe0, probe1);
    return {
      rate: options.rate,
      storm,
      window_s: round(window, 2),
      server_pct: serverPct,
      bpftrace_pct: probePct,
      total_pct: round(serverPct + (probePct ?? 0)),
      ...(await recordedOf(server, storm, startedAt, errors)),
    };
  });

// ---- results ----

interface Goal {
  name: string;
  value: number | null;
  shown: string;
  limit: string;
  pass: boolean;
}

function goalsOf(throughput: number | null, rounds: WithRound[], cpu: CpuResult | null): Goal[] {
  const measured = [...rounds, ...(cpu ? [cpu] : [])];
  // Fewer is missed connections, more is events counted twice: both fail. A failed connect may be
  // recorded too (as a connect with its error), so the storm's errors are allowed on top.
  const complete = measured.length > 0 && measured.every((r) => r.recorded >= r.storm.connections && r.recorded <= r.storm.connections + r.storm.errors);
  const missed = measured.reduce((n, r) => n + Math.max(0, r.storm.connections - r.recorded), 0);
  const extra = measured.reduce((n, r) => n + Math.max(0, r.recorded - r.storm.connections - r.storm.errors), 0);
  const made = measured.reduce((n, r) => n + r.storm.connections, 0);
  const shown = measured.length === 0 ? "n/a" : complete ? "100%" : [missed > 0 ? `${missed} missed` : "", extra > 0 ? `${extra} extra` : ""].filter(Boolean).join(", ");
  const lost = measured.reduce((n, r) => n + r.lost_events, 0);
  const goals: Goal[] = [
    { name: "throughput with / without", value: throughput, shown: times(throughput), limit: `>= ${GOALS.throughputRatio}x`, pass: throughput !== null && throughput >= GOALS.throughputRatio },
    { name: "connects recorded (all storms)", value: percentOf(made - missed + extra, made), shown, limit: `${GOALS.recordedPct}%`, pass: complete },
    { name: "lost events (all storms)", value: lost, shown: String(lost), limit: String(GOALS.lostEvents), pass: lost <= GOALS.lostEvents },
  ];
  if (cpu) {
    goals.push({ name: `CPU at ${cpu.rate}/s (server+bpftrace)`, value: cpu.total_pct, shown: `${fixed(cpu.total_pct)}%`, limit: `< ${GOALS.cpuPct}%`, pass: cpu.total_pct < GOALS.cpuPct });
  }
  return goals;
}

function table(options: Options, without: StormResult[], rounds: WithRound[], medians: { without: Stats | null; with: Stats | null }, throughput: number | null, cpu: CpuResult | null, goals: Goal[]): string {
  const row = (cells: string[]) => `${cells[0]!.padEnd(7)}${cells.slice(1).map((c) => c.padStart(13)).join("")}\n`;
  const pinned = options.stormCpu === null ? "storms on any CPU" : `storms on CPU ${options.stormCpu} only`;
  let out = `ipcscope events: bench/storm.py on 127.0.0.1 (${pinned}), ${options.runs} interleaved rounds of ${options.seconds} s at full speed,\n`;
  out += `without any ipcscope and with a fresh \`${options.binary} serve --http --port 0\` (monitor on: source ${rounds[0]?.source ?? "n/a"})\n\n`;
  out += row(["round", "without", "with", "connections", "recorded", "recorded", "accepts", "lost"]);
  out += row(["", "(conn/s)", "(conn/s)", "(with)", "connects", "(%)", "recorded", "events"]);
  for (let i = 0; i < rounds.length; i++) {
    const r = rounds[i]!;
    out += row([String(i + 1), fixed(without[i]?.per_second), fixed(r.storm.per_second), String(r.storm.connections), String(r.recorded), fixed(r.recorded_pct, 2), String(r.accepts_recorded), String(r.lost_events)]);
  }
  out += row(["median", fixed(medians.without?.median), fixed(medians.with?.median), "", "", "", "", ""]);
  out += row(["ratio", "", times(throughput), "", "", "", "", ""]);
  if (cpu) {
    out += `\nCPU during a storm at ${cpu.rate} connections/s for ${options.cpuSeconds} s (reached ${fixed(cpu.storm.per_second)}/s, ${cpu.storm.connections} connections, ${fixed(cpu.recorded_pct, 2)}% recorded, ${cpu.lost_events} lost),\n`;
    const bpftrace = cpu.bpftrace_pct === null ? "n/a (no probe)" : `${fixed(cpu.bpftrace_pct)}%`;
    out += `% of one core over ${fixed(cpu.window_s, 2)} s: ipcscope server ${fixed(cpu.server_pct)}%, bpftrace ${bpftrace}, together ${fixed(cpu.total_pct)}%\n`;
    if (cpu.storm.per_second < 0.95 * cpu.rate) out += `(one Python process could not reach ${cpu.rate}/s here: the figure is for ${fixed(cpu.storm.per_second)}/s)\n`;
  }
  out += "\ngoals:\n";
  for (const g of goals) out += `  ${g.pass ? "PASS" : "FAIL"}  ${g.name.padEnd(34)} ${g.shown.padStart(8)}  (goal ${g.limit})\n`;
  return out;
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  if (!existsSync(options.binary)) fail(`${options.binary} does not exist: run scripts/build (or pass --binary PATH)`);
  if (!existsSync(PYTHON)) fail(`${PYTHON} is needed for bench/storm.py`);
  if (process.geteuid?.() !== 0) log("not root: the monitor cannot load its probe and falls back to ss polling (the goals are for eBPF)");

  const errors: string[] = [];
  const without: StormResult[] = [];
  const rounds: WithRound[] = [];
  log(`${options.runs} round(s) of ${options.seconds} s storms, without and with the server (ABBA order)`);
  for (let i = 0; i < options.runs; i++) {
    // ABBA: the order alternates, so a drift of the machine over the run hits both alike.
    for (const monitored of i % 2 === 0 ? [false, true] : [true, false]) {
      if (monitored) {
        const r = await withRound(options, errors);
        rounds.push(r);
        log(`round ${i + 1} with:    ${r.storm.per_second} conn/s, ${r.recorded}/${r.storm.connections} connects recorded, ${r.lost_events} lost`);
      } else {
        const s = await runStorm(options.seconds, options.stormCpu);
        without.push(s);
        if (s.errors > 0) errors.push(`storm pid ${s.pid}: ${s.errors} connection(s) failed`);
        log(`round ${i + 1} without: ${s.per_second} conn/s`);
      }
      await sleep(ROUND_PAUSE_MS);
    }
  }
  let cpu: CpuResult | null = null;
  if (options.rate > 0) {
    log(`CPU: storm at ${options.rate}/s for ${options.cpuSeconds} s with the server`);
    cpu = await cpuRound(options, errors);
  }
  for (const r of rounds) if (r.source !== "ebpf") errors.push(`the monitor ran on ${r.source}, not eBPF`);

  const medians = {
    without: roundStats(stats(without.map((s) => s.per_second))),
    with: roundStats(stats(rounds.map((r) => r.storm.per_second))),
  };
  const throughput = ratio(medians.with?.median, medians.without?.median);
  const goals = goalsOf(throughput, rounds, cpu);
  const pass = goals.every((g) => g.pass);
  if (options.json) {
    const result = { seconds: options.seconds, runs: options.runs, storm_cpu: options.stormCpu, binary: options.binary, without, with: rounds, medians, throughput_ratio: throughput, cpu, goals, pass, errors: errors.length };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    process.stdout.write(table(options, without, rounds, medians, throughput, cpu, goals));
  }
  for (const error of errors) log(`error: ${error}`);
  return options.check && (!pass || errors.length > 0) ? 1 : 0;
}

await runMain(main);
