#!/usr/bin/env bun
// Health probes benchmark: what each probe the health tools run costs a host that makes many short
// TCP connections. The load is bench/storm.py (as bench/events.ts runs it): loopback connections
// one after another at full speed, pinned to one CPU. Each round runs the storm without any probe
// and with each probe alone, straight under `bpftrace -q -B none -f json probes/<name>.bt ARGS`
// (started for that storm; the storm begins once the probe printed "ready"), in ABBA order; the
// medians per probe and their ratio to the medians without.
//   bun bench/health.ts [--probes a,b] [--seconds S] [--runs N] [--storm-cpu C|any] [--json]
// The probes default to every probes/*.bt whose header says `Output: json` (the health probes,
// which count in the kernel and print maps). Each positional parameter a probe uses gets its "no
// filter" value: "" where the script reads it as str($N), else 0. There is no goal: the ratios are
// the probes' overhead, for their headers. It exits 1 only when a probe could not run (did not
// load, or died during a storm). Run as root (bpftrace needs it); every bpftrace and storm it starts
// is killed by pid on an error or Ctrl-C.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseProbeHeader } from "../src/probes/catalog.ts";
import { type BaseOptions, BenchError, DEFAULT_BINARY, PYTHON, ROOT, type Seen, type StormResult, drain, fail, integerOption, log, parseOptions, runMain, runStorm, stormCpuOption, sleep } from "./_lib.ts";
import { stop, tail, track, waitForLine } from "./_lib.ts";
import { fixed, ratio, roundStats, stats, times } from "./_lib.ts";

const PROBES_DIR = join(ROOT, "probes");
/** bpftrace compiles the probe with LLVM before it attaches: seconds, more on a busy 2-core machine. */
const PROBE_READY_TIMEOUT_MS = 60_000;
/** Lets bpftrace finish its own start-up (the first map prints) before the storm is timed. */
const PROBE_SETTLE_MS = 1_000;
/** bpftrace detaches and prints its END maps on SIGTERM; SIGKILL after this. */
const PROBE_STOP_GRACE_MS = 5_000;
/** Lets the previous storm's sockets and the previous probe finish tearing down. */
const ROUND_PAUSE_MS = 1_000;
/** The probe's "ready" line, as a plain printf line or wrapped by -f json ({"type":"printf","data":"{\"type\":\"ready\"..."}). */
const READY = /\\?"type\\?":\s*\\?"ready\\?"/;

interface Options extends BaseOptions {
  seconds: number;
  probes: string[] | null;
  stormCpu: number | null;
}

const USAGE = `usage: bun bench/health.ts [options]
  --probes a,b      probes to measure, by name (default: every probes/*.bt whose header says Output: json)
  --seconds S       length of each storm (default 4)
  --runs N          rounds: one storm without a probe and one with each probe, per round (default 3)
  --storm-cpu C     run every storm (client and server) on CPU C only (default 0), or "any"
  --json            print one JSON object instead of the table (progress goes to stderr)
  --check           accepted for symmetry with the other benches: a probe that cannot run always exits 1`;

function parseArgs(argv: string[]): Options {
  const options: Options = { seconds: 4, runs: 3, probes: null, stormCpu: 0, binary: DEFAULT_BINARY, json: false, check: false };
  return parseOptions(argv, options, USAGE, (flag, value) => {
    switch (flag) {
      case "--seconds": options.seconds = integerOption(flag, value(), 1, 600); return true;
      case "--probes": {
        const names = (value() ?? "").split(",").map((name) => name.trim()).filter(Boolean);
        if (names.length === 0) fail("--probes needs probe names, comma-separated");
        options.probes = names;
        return true;
      }
      case "--storm-cpu": options.stormCpu = stormCpuOption(flag, value()); return true;
      default: return false;
    }
  });
}

// ---- the probes ----

interface BenchProbe {
  name: string;
  path: string;
  json: boolean;
  args: string[];
}

/**
 * The "no filter" value of each positional parameter the script uses ($1..$N, comments left out):
 * "" when it reads the parameter as str($N), else "0". bpftrace wants every used parameter given.
 */
function neutralArgs(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  const used = [...code.matchAll(/\$(\d+)\b/g)].map((m) => Number(m[1]));
  const highest = Math.max(0, ...used);
  return Array.from({ length: highest }, (_, i) => (new RegExp(`str\\(\\s*\\$${i + 1}\\s*\\)`).test(code) ? "" : "0"));
}

function loadProbes(names: string[] | null): BenchProbe[] {
  const files = readdirSync(PROBES_DIR).filter((file) => file.endsWith(".bt")).sort();
  const all = files.map((file) => {
    const name = file.slice(0, -3);
    const path = join(PROBES_DIR, file);
    const source = readFileSync(path, "utf8");
    let json = false;
    try {
      json = parseProbeHeader(name, source).output === "json";
    } catch (error) {
      log(`${file}: ${(error as Error).message}`);
    }
    return { name, path, json, args: neutralArgs(source) };
  });
  if (names === null) return all.filter((probe) => probe.json);
  return names.map((name) => all.find((probe) => probe.name === name) ?? fail(`--probes: no probes/${name}.bt (known: ${all.map((p) => p.name).join(", ")})`));
}

const shownArgs = (probe: BenchProbe) => probe.args.map((arg) => (arg === "" ? '""' : arg)).join(" ");

/** Runs one storm with the probe attached: starts bpftrace, waits for "ready", storms, stops bpftrace. */
async function stormWithProbe(probe: BenchProbe, options: Options): Promise<StormResult> {
  const command = ["bpftrace", "-q", "-B", "none", ...(probe.json ? ["-f", "json"] : []), probe.path, ...probe.args];
  const child = track(Bun.spawn(command, { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" }));
  const stderr: Seen = { text: "" };
  void drain(child.stderr, stderr).catch(() => {});
  const stdout: Seen = { text: "" };
  try {
    const ready = await waitForLine(child.stdout, READY, PROBE_READY_TIMEOUT_MS, stdout);
    const why = () => `${tail(stderr) || tail(stdout) || "no output"}`;
    if (!ready) throw new BenchError(`${probe.name}: no ready line within ${PROBE_READY_TIMEOUT_MS / 1000} s (exit ${child.exitCode ?? "-"}): ${why()}`);
    await sleep(PROBE_SETTLE_MS);
    const storm = await runStorm(options.seconds, options.stormCpu);
    if (child.exitCode !== null || child.signalCode !== null) throw new BenchError(`${probe.name}: bpftrace exited during the storm (${child.exitCode ?? child.signalCode}): ${why()}`);
    return storm;
  } finally {
    await stop(child, "SIGTERM", PROBE_STOP_GRACE_MS);
  }
}

// ---- results ----

interface Subject {
  name: string;
  args: string[];
  runs: StormResult[];
  error: string | null;
}

interface Row {
  probe: string;
  args: string[];
  per_second: number[];
  median: number | null;
  min: number | null;
  max: number | null;
  ratio: number | null;
  error: string | null;
}

function rowsOf(baseline: Subject, subjects: Subject[]): Row[] {
  const base = roundStats(stats(baseline.runs.map((s) => s.per_second)));
  return [baseline, ...subjects].map((subject) => {
    const s = roundStats(stats(subject.runs.map((run) => run.per_second)));
    return {
      probe: subject.name,
      args: subject.args,
      per_second: subject.runs.map((run) => run.per_second),
      median: s?.median ?? null,
      min: s?.min ?? null,
      max: s?.max ?? null,
      ratio: subject === baseline ? null : ratio(s?.median, base?.median),
      error: subject.error,
    };
  });
}

function table(options: Options, rows: Row[]): string {
  const pinned = options.stormCpu === null ? "storms on any CPU" : `storms on CPU ${options.stormCpu} only`;
  let out = `ipcscope health probes: bench/storm.py on 127.0.0.1 (${pinned}), ${options.runs} interleaved round(s) of ${options.seconds} s at full speed,\n`;
  out += "without any probe and with each probe alone under `bpftrace -q -B none -f json probes/<name>.bt ARGS`\n\n";
  const width = Math.max(22, ...rows.map((row) => row.probe.length + 2));
  const line = (cells: string[]) => `${cells[0]!.padEnd(width)}${cells[1]!.padEnd(8)}${cells.slice(2).map((c) => c.padStart(11)).join("")}\n`;
  out += line(["probe", "args", "median", "min", "max", "with /"]);
  out += line(["", "", "(conn/s)", "(conn/s)", "(conn/s)", "without"]);
  for (const row of rows) {
    const baseline = row.probe === "(no probe)";
    out += line([row.probe, row.args.map((a) => (a === "" ? '""' : a)).join(" "), fixed(row.median), fixed(row.min), fixed(row.max), baseline ? "" : times(row.ratio)]);
  }
  const failed = rows.filter((row) => row.error);
  if (failed.length > 0) {
    out += "\ncould not run:\n";
    for (const row of failed) out += `  ${row.probe}: ${row.error}\n`;
  }
  return out;
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  if (!existsSync(PYTHON)) fail(`${PYTHON} is needed for bench/storm.py`);
  if (!Bun.which("bpftrace")) fail("bpftrace is not installed (apt-get install -y bpftrace, or dnf install -y bpftrace)");
  if (process.geteuid?.() !== 0) fail("run as root: bpftrace needs it");
  const probes = loadProbes(options.probes);
  if (probes.length === 0) fail("no probe to measure: no probes/*.bt says Output: json (name some with --probes)");
  log(`${options.runs} round(s) of ${options.seconds} s storms: without a probe, and with ${probes.map((p) => `${p.name} ${shownArgs(p)}`.trim()).join(", ")} (ABBA order)`);

  const baseline: Subject = { name: "(no probe)", args: [], runs: [], error: null };
  const subjects: Subject[] = probes.map((probe) => ({ name: probe.name, args: probe.args, runs: [], error: null }));
  const errors: string[] = [];
  for (let i = 0; i < options.runs; i++) {
    const order: (BenchProbe | null)[] = [null, ...probes];
    // ABBA: the order reverses every other round, so a drift of the machine over the run hits all alike.
    if (i % 2 === 1) order.reverse();
    for (const probe of order) {
      if (probe === null) {
        const storm = await runStorm(options.seconds, options.stormCpu);
        baseline.runs.push(storm);
        if (storm.errors > 0) errors.push(`storm pid ${storm.pid}: ${storm.errors} connection(s) failed`);
        log(`round ${i + 1} no probe: ${storm.per_second} conn/s`);
      } else {
        const subject = subjects.find((s) => s.name === probe.name)!;
        if (subject.error) continue; // it could not run once: not again
        try {
          const storm = await stormWithProbe(probe, options);
          subject.runs.push(storm);
          if (storm.errors > 0) errors.push(`storm pid ${storm.pid}: ${storm.errors} connection(s) failed`);
          log(`round ${i + 1} ${probe.name}: ${storm.per_second} conn/s`);
        } catch (error) {
          if (!(error instanceof BenchError)) throw error;
          subject.error = error.message;
          log(`round ${i + 1} ${probe.name}: could not run: ${error.message}`);
        }
      }
      await sleep(ROUND_PAUSE_MS);
    }
  }

  const rows = rowsOf(baseline, subjects);
  const failed = subjects.filter((s) => s.error !== null).length;
  if (options.json) {
    const result = { seconds: options.seconds, runs: options.runs, storm_cpu: options.stormCpu, rows, errors, failed_probes: failed };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    process.stdout.write(table(options, rows));
  }
  for (const error of errors) log(`error: ${error}`);
  return failed > 0 ? 1 : 0;
}

await runMain(main);
