#!/usr/bin/env bun
// Snapshot benchmark: with N loopback TCP connection pairs held open (2N sockets), how long does a
// full snapshot of every process and its sockets take, compared with raw `ss -tupnaeH` and with
// psutil, measured in the same run and interleaved so machine noise hits all alike:
//   - "cli":    dist/ipcscope snapshot --json > /dev/null   (spawn to exit)
//   - "server": GET /get_process_connection_snapshot on a running `ipcscope serve --http` (answer read fully)
//   - "ss":     ss -tupnaeH > /dev/null                     (the baseline the goals are stated against)
//   - "psutil": /usr/bin/python3 bench/snapshot-psutil.py > /dev/null
//   bun bench/snapshot.ts [--sizes 1000,10000,50000] [--runs N] [--warmup N] [--binary PATH] [--hold S] [--json] [--check]
// The pairs are held by bench/snapshot-generator.py children (at most PER_CHILD pairs each, on
// 127.0.0.1 only); each exits when its stdin closes or after --hold seconds by itself. Every process
// this starts is waited for or killed by pid, also on an error or Ctrl-C.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type BaseOptions, type Seen, BenchError, DEFAULT_BINARY, PYTHON, ROOT, drain, fail, integerOption, log, parseOptions, runMain, sleep, startServer, stop, tail, track, waitForLine } from "./_lib.ts";
import { type Stats, fixed, ratio, roundStats, stats, times } from "./_lib.ts";

const GENERATOR = join(import.meta.dir, "snapshot-generator.py");
const PSUTIL_SCRIPT = join(import.meta.dir, "snapshot-psutil.py");
/** Pairs per generator child: 2 descriptors each, under the 20k open-file hard limit with room to spare. */
const PER_CHILD = 8000;
const MAX_PAIRS = 200_000;
const READY_TIMEOUT_MS = 120_000;
const SETTLE_TIMEOUT_MS = 30_000;
const RUN_TIMEOUT_MS = 120_000;

/** CLI median / raw `ss -tupnaeH` median must be at most this, by size (the largest key <= N applies). */
const SS_RATIO_GOALS: [pairs: number, maxRatio: number][] = [
  [1_000, 1.1],
  [10_000, 0.9],
  [50_000, 0.3],
];
/** psutil median / CLI median must be at least this at every size. */
const PSUTIL_SPEEDUP_GOAL = 1.5;

interface Options extends BaseOptions {
  sizes: number[];
  warmup: number;
  holdSeconds: number;
}

const USAGE = `usage: bun bench/snapshot.ts [options]
  --sizes N,N,...   connection pairs to hold per round (default 1000,10000,50000; 2 sockets each)
  --runs N          measured runs per subject and size (default 5)
  --warmup N        unmeasured runs per subject and size first (default 1; the first also checks the answers)
  --binary PATH     ipcscope binary (default dist/ipcscope)
  --hold S          each generator child exits by itself after S seconds (default 300)
  --json            print one JSON object instead of the table (progress goes to stderr)
  --check           exit 1 if a goal fails or a run errs (default: exit 0 regardless)`;

function parseArgs(argv: string[]): Options {
  const options: Options = { sizes: [1_000, 10_000, 50_000], runs: 5, warmup: 1, binary: DEFAULT_BINARY, holdSeconds: 300, json: false, check: false };
  return parseOptions(argv, options, USAGE, (flag, value) => {
    switch (flag) {
      case "--sizes": {
        const list = value();
        if (!list) fail("--sizes needs a comma-separated list of pair counts");
        options.sizes = list.split(",").map((s) => integerOption("--sizes", s, 0, MAX_PAIRS));
        return true;
      }
      case "--warmup": options.warmup = integerOption(flag, value(), 0); return true;
      case "--hold": options.holdSeconds = integerOption(flag, value(), 10, 3600); return true;
      default: return false;
    }
  });
}

// ---- connection pairs ----

function establishedCount(): number {
  const result = Bun.spawnSync(["ss", "-tnH", "state", "established"], { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new BenchError(`ss -tnH state established failed: ${result.stderr.toString().trim()}`);
  const text = result.stdout.toString();
  let lines = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) lines++;
  return lines;
}

interface Generator {
  children: Bun.Subprocess<"pipe", "pipe", "pipe">[];
  stderr: Seen[];
}

/** Starts the children holding `pairs` pairs and waits until every pair is established. */
async function holdPairs(pairs: number, holdSeconds: number, before: number, generator: Generator): Promise<number> {
  const childCount = Math.ceil(pairs / PER_CHILD);
  const shares = Array.from({ length: childCount }, (_, i) => Math.floor(pairs / childCount) + (i < pairs % childCount ? 1 : 0));
  for (const share of shares) {
    const child = track(Bun.spawn([PYTHON, GENERATOR, String(share), String(holdSeconds)], { stdin: "pipe", stdout: "pipe", stderr: "pipe" }));
    const sink = { text: "" };
    void drain(child.stderr, sink).catch(() => {});
    generator.children.push(child);
    generator.stderr.push(sink);
  }
  const started = performance.now();
  const ready = await Promise.all(
    generator.children.map((child) => waitForLine(child.stdout, /^ready (\d+)/, READY_TIMEOUT_MS, { text: "" })),
  );
  const failed = ready.findIndex((match) => match === null);
  if (failed >= 0) {
    const last = tail(generator.stderr[failed]!);
    throw new BenchError(`generator child ${generator.children[failed]!.pid} did not report ready within ${READY_TIMEOUT_MS / 1000} s (stderr: ${last || "none"})`);
  }
  // Both ends are ours, so every pair is 2 ESTAB sockets: wait until ss sees them all.
  let count = establishedCount();
  while (count < before + 2 * pairs) {
    if (performance.now() - started > READY_TIMEOUT_MS + SETTLE_TIMEOUT_MS) {
      throw new BenchError(`only ${count - before} of ${2 * pairs} sockets established`);
    }
    await sleep(100);
    count = establishedCount();
  }
  log(`${pairs} pairs (${count - before} more ESTAB sockets) held by ${childCount} child(ren) after ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return count - before;
}

async function releasePairs(generator: Generator, before: number): Promise<void> {
  await Promise.all(generator.children.map((child) => stop(child, "stdin")));
  // SO_LINGER 0 in the children: the sockets go with an RST, no TIME-WAIT; wait until they are gone.
  const started = performance.now();
  while (establishedCount() > before + 16 && performance.now() - started < SETTLE_TIMEOUT_MS) await sleep(100);
}

// ---- the subjects ----

type SubjectName = "cli" | "server" | "ss" | "psutil";
const SUBJECTS: SubjectName[] = ["cli", "server", "ss", "psutil"];
const LABELS: Record<SubjectName, string> = {
  cli: "ipcscope snapshot --json (CLI)",
  server: "GET /get_process_connection_snapshot (running server)",
  ss: "ss -tupnaeH (raw baseline)",
  psutil: "psutil net_connections + name/username/cmdline",
};

interface Sample {
  ms?: number;
  error?: string;
}

/** Wall time from spawn to exit, stdout to /dev/null. */
async function timeCommand(command: string[]): Promise<Sample> {
  const stderr = { text: "" };
  const t0 = performance.now();
  const child = track(Bun.spawn(command, { cwd: ROOT, stdin: "ignore", stdout: "ignore", stderr: "pipe" }));
  const stderrDone = drain(child.stderr, stderr).catch(() => {});
  let timer: Timer | undefined;
  const result = await Promise.race([
    child.exited,
    new Promise<"timeout">((done) => (timer = setTimeout(() => done("timeout"), RUN_TIMEOUT_MS))),
  ]);
  const t1 = performance.now();
  clearTimeout(timer);
  if (result === "timeout") {
    process.kill(child.pid, "SIGKILL");
    await child.exited;
    return { error: `${command[0]} still running after ${RUN_TIMEOUT_MS / 1000} s; killed` };
  }
  await Promise.race([stderrDone, sleep(1_000)]);
  if (result !== 0) {
    return { error: `${command.join(" ")}: exit ${result} (stderr: ${stderr.text.trim().split("\n").slice(-2).join(" | ").slice(0, 300)})` };
  }
  return { ms: t1 - t0 };
}

/** Time from sending the request to the last byte of the answer. */
async function timeRequest(url: string): Promise<Sample> {
  const t0 = performance.now();
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(RUN_TIMEOUT_MS) });
    const body = await response.arrayBuffer();
    const t1 = performance.now();
    if (response.status !== 200) return { error: `GET ${url}: HTTP ${response.status}: ${new TextDecoder().decode(body).slice(0, 300)}` };
    return { ms: t1 - t0 };
  } catch (error) {
    return { error: `GET ${url}: ${(error as Error).message}` };
  }
}

interface Context {
  options: Options;
  restUrl: string;
}

function commandFor(subject: Exclude<SubjectName, "server">, options: Options): string[] {
  switch (subject) {
    case "cli": return [options.binary, "snapshot", "--json"];
    case "ss": return ["ss", "-tupnaeH"];
    case "psutil": return [PYTHON, PSUTIL_SCRIPT];
  }
}

const measure = (subject: SubjectName, context: Context): Promise<Sample> =>
  subject === "server" ? timeRequest(context.restUrl) : timeCommand(commandFor(subject, context.options));

/**
 * One unmeasured run of each that reads the answers: every subject must see the pairs, or the
 * figures would compare different amounts of work. Returns what went wrong.
 */
async function verify(context: Context, sockets: number): Promise<string[]> {
  const problems: string[] = [];
  const expect = (who: string, seen: number | undefined) => {
    if (seen === undefined || !(seen >= sockets)) problems.push(`${who} saw ${seen ?? "no"} sockets, expected at least ${sockets}`);
  };
  const cli = Bun.spawnSync(commandFor("cli", context.options), { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  try {
    expect("ipcscope CLI", (JSON.parse(cli.stdout.toString()) as { totals?: { sockets?: number } }).totals?.sockets);
  } catch {
    problems.push(`ipcscope CLI: exit ${cli.exitCode}, no JSON answer (stderr: ${cli.stderr.toString().trim().slice(0, 300)})`);
  }
  try {
    const response = await fetch(context.restUrl, { signal: AbortSignal.timeout(RUN_TIMEOUT_MS) });
    const body = (await response.json()) as { totals?: { sockets?: number } };
    expect(`server (HTTP ${response.status})`, body.totals?.sockets);
  } catch (error) {
    problems.push(`server: ${(error as Error).message}`);
  }
  const ss = Bun.spawnSync(commandFor("ss", context.options), { stdout: "pipe", stderr: "pipe" });
  expect("ss -tupnaeH", ss.stdout.toString().split("\n").filter((line) => line.startsWith("tcp ")).length);
  const psutil = Bun.spawnSync(commandFor("psutil", context.options), { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  try {
    expect("psutil", (JSON.parse(psutil.stdout.toString()) as { sockets?: number }).sockets);
  } catch {
    problems.push(`psutil: exit ${psutil.exitCode}, no JSON answer (stderr: ${psutil.stderr.toString().trim().split("\n").slice(-1)[0]?.slice(0, 300)})`);
  }
  return problems;
}

// ---- results ----

interface SizeResult {
  pairs: number;
  children: number;
  established_sockets: number;
  runs: number;
  ms: Record<SubjectName, Stats | null>;
  ratios: { cli_vs_ss: number | null; server_vs_ss: number | null; cli_vs_psutil: number | null; psutil_vs_cli: number | null };
  errors: string[];
}

interface Goal {
  pairs: number;
  name: string;
  value: number | null;
  limit: string;
  pass: boolean;
}

function goalsFor(result: SizeResult): Goal[] {
  const goals: Goal[] = [];
  const { pairs, ratios, ms } = result;
  const ssGoal = SS_RATIO_GOALS.filter(([at]) => pairs >= at).at(-1);
  if (ssGoal) {
    goals.push({ pairs, name: "CLI / raw ss -tupnaeH", value: ratios.cli_vs_ss, limit: `<= ${ssGoal[1]}x`, pass: ratios.cli_vs_ss !== null && ratios.cli_vs_ss <= ssGoal[1] });
  }
  goals.push({ pairs, name: "psutil / CLI (x faster)", value: ratios.psutil_vs_cli, limit: `>= ${PSUTIL_SPEEDUP_GOAL}x`, pass: ratios.psutil_vs_cli !== null && ratios.psutil_vs_cli >= PSUTIL_SPEEDUP_GOAL });
  const serverVsCli = ratio(ms.server?.median, ms.cli?.median);
  goals.push({ pairs, name: "server call / CLI", value: serverVsCli, limit: "< 1x", pass: serverVsCli !== null && serverVsCli < 1 });
  return goals;
}

// ---- main ----

async function runSize(pairs: number, context: Context): Promise<SizeResult> {
  const { options } = context;
  const before = establishedCount();
  const generator: Generator = { children: [], stderr: [] };
  const errors: string[] = [];
  const samples: Record<SubjectName, Sample[]> = { cli: [], server: [], ss: [], psutil: [] };
  let sockets = 0;
  try {
    sockets = await holdPairs(pairs, options.holdSeconds, before, generator);
    if (options.warmup > 0) errors.push(...(await verify(context, 2 * pairs)));
    for (let i = 1; i < options.warmup; i++) for (const subject of SUBJECTS) await measure(subject, context);
    log(`${pairs} pairs: ${options.runs} run(s) of each, interleaved`);
    for (let i = 0; i < options.runs; i++) {
      // Rotate the order so no subject always runs right after the same other one.
      for (let j = 0; j < SUBJECTS.length; j++) {
        const subject = SUBJECTS[(i + j) % SUBJECTS.length]!;
        const sample = await measure(subject, context);
        samples[subject].push(sample);
        if (sample.error) errors.push(`${subject}: ${sample.error}`);
      }
    }
    const after = establishedCount() - before;
    if (after < 2 * pairs) errors.push(`only ${after} of ${2 * pairs} sockets still established after the runs (a generator child died?)`);
  } finally {
    await releasePairs(generator, before);
  }
  const ms = Object.fromEntries(
    SUBJECTS.map((subject) => [subject, roundStats(stats(samples[subject].flatMap((s) => (s.ms === undefined ? [] : [s.ms]))))]),
  ) as Record<SubjectName, Stats | null>;
  return {
    pairs,
    children: generator.children.length,
    established_sockets: sockets,
    runs: options.runs,
    ms,
    ratios: {
      cli_vs_ss: ratio(ms.cli?.median, ms.ss?.median),
      server_vs_ss: ratio(ms.server?.median, ms.ss?.median),
      cli_vs_psutil: ratio(ms.cli?.median, ms.psutil?.median),
      psutil_vs_cli: ratio(ms.psutil?.median, ms.cli?.median),
    },
    errors,
  };
}

function table(options: Options, results: SizeResult[], goals: Goal[]): string {
  const cell = (s: Stats | null) => (s ? `${fixed(s.median)} (${fixed(s.p90)})` : "n/a");
  const row = (cells: string[]) => `${cells[0]!.padStart(6)}${cells.slice(1).map((c, i) => c.padStart(i < 4 ? 16 : 10)).join("")}\n`;
  let out = `ipcscope snapshot: ${options.runs} interleaved runs per subject and size (+${options.warmup} warm-up), wall ms median (p90)\n`;
  for (const subject of SUBJECTS) out += `  ${subject.padEnd(7)} ${LABELS[subject]}\n`;
  out += "\n";
  out += row(["pairs", "cli", "server", "ss", "psutil", "cli/ss", "srv/ss", "cli/psu", "psu/cli", "errors"]);
  for (const r of results) {
    out += row([
      String(r.pairs),
      cell(r.ms.cli),
      cell(r.ms.server),
      cell(r.ms.ss),
      cell(r.ms.psutil),
      times(r.ratios.cli_vs_ss),
      times(r.ratios.server_vs_ss),
      times(r.ratios.cli_vs_psutil),
      times(r.ratios.psutil_vs_cli),
      String(r.errors.length),
    ]);
  }
  out += "\ngoals:\n";
  for (const g of goals) {
    out += `  ${g.pass ? "PASS" : "FAIL"}  ${String(g.pairs).padStart(6)} pairs  ${g.name.padEnd(24)} ${times(g.value).padStart(7)}  (goal ${g.limit})\n`;
  }
  return out;
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  if (!existsSync(options.binary)) fail(`${options.binary} does not exist: run scripts/build (or pass --binary PATH)`);
  if (!existsSync(PYTHON)) fail(`${PYTHON} is needed for the generator and the psutil script`);
  if (Bun.spawnSync([PYTHON, "-c", "import psutil"], { stderr: "ignore" }).exitCode !== 0) {
    fail(`psutil is not importable by ${PYTHON}: apt-get install -y python3-psutil`);
  }
  if (process.geteuid?.() !== 0) log("not root: ss -p, psutil and ipcscope all see only this user's processes");

  // The tool call alone: no event monitor (bpftrace) competing for the CPU while it is timed.
  const server = await startServer(options.binary, ["--no-monitor"]);
  const results: SizeResult[] = [];
  try {
    const restUrl = `${server.url}/get_process_connection_snapshot`;
    log(`server answering at ${restUrl}`);
    const context: Context = { options, restUrl };
    for (const pairs of options.sizes) results.push(await runSize(pairs, context));
  } finally {
    if (!(await stop(server.child, "SIGTERM"))) log("server did not stop within 3 s of SIGTERM; killed");
  }

  const goals = results.flatMap(goalsFor);
  const errorCount = results.reduce((n, r) => n + r.errors.length, 0);
  const pass = goals.every((g) => g.pass);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ runs: options.runs, warmup: options.warmup, binary: options.binary, sizes: results, goals, pass, errors: errorCount }, null, 2)}\n`);
  } else {
    process.stdout.write(table(options, results, goals));
  }
  for (const r of results) for (const error of r.errors) log(`error (${r.pairs} pairs): ${error}`);
  return options.check && (!pass || errorCount > 0) ? 1 : 0;
}

await runMain(main);
