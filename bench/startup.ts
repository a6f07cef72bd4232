#!/usr/bin/env bun
// Start-up benchmark for the compiled binary: time from spawn to the reply to an MCP `initialize`
// request, and the idle RSS after it, compared with an empty compiled Bun program measured in the
// same run (runs interleaved so machine noise hits both alike).
//   bun bench/startup.ts [--runs N] [--warmup N] [--binary PATH] [--json] [--check] [--no-compare-bytecode]
// node: and Bun APIs only (helpers in bench/_lib.ts). Every process it starts is waited for, or killed
// by pid, also on an error or Ctrl-C.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BaseOptions, BenchError, DEFAULT_BINARY, ROOT, type Seen, drain, fail, integerOption, log, parseOptions, runMain, sleep, tail, track } from "./_lib.ts";
import { fixed, ratio, round, roundStats, stats, times } from "./_lib.ts";

const MB = 1024 * 1024; // MB here is 2^20 bytes, as `du -m` in scripts/build
const IDLE_MS = 300;
const REPLY_TIMEOUT_MS = 10_000;
const EXIT_TIMEOUT_MS = 3_000;
const GOALS = { initMedianMs: 50, idleRssMB: 60, binaryMB: 120 };

const INITIALIZE = `${JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "0" } },
})}\n`;

// The baseline: the least a compiled Bun stdio server can do. It uses process.stdin/stdout, as the
// MCP SDK's stdio transport does, so the difference is what ipcscope itself costs.
const BASELINE_SOURCE = `let buffered = "";
let replied = false;
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  if (replied) return;
  buffered += chunk;
  if (buffered.includes("\\n")) {
    replied = true;
    process.stdout.write('{"jsonrpc":"2.0","id":1,"result":{}}\\n');
  }
});
process.stdin.on("end", () => process.exit(0));
`;

interface Options extends BaseOptions {
  warmup: number;
  compareBytecode: boolean;
}

const USAGE = `usage: bun bench/startup.ts [options]
  --runs N               measured runs per program (default 20)
  --warmup N             unmeasured runs per program first, to warm the page cache (default 1)
  --binary PATH          binary to measure (default dist/ipcscope); it is run as "PATH serve"
  --json                 print one JSON object instead of the table
  --check                exit 1 if a goal fails or a run errs (default: exit 0 regardless)
  --no-compare-bytecode  skip building and measuring dist-equivalent without --bytecode`;

function parseArgs(argv: string[]): Options {
  const options: Options = { runs: 20, warmup: 1, binary: DEFAULT_BINARY, json: false, check: false, compareBytecode: true };
  return parseOptions(argv, options, USAGE, (flag, value) => {
    switch (flag) {
      case "--warmup": options.warmup = integerOption(flag, value(), 0); return true;
      case "--no-compare-bytecode": options.compareBytecode = false; return true;
      default: return false;
    }
  });
}

interface Sample {
  startMs?: number;
  rssMB?: number;
  error?: string;
}

function vmRssMB(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** One run: spawn, send initialize, time the reply, read idle RSS, close stdin, wait for exit. */
async function measure(command: string[]): Promise<Sample> {
  const sample: Sample = {};
  const errors: string[] = [];
  const stderr: Seen = { text: "" };
  const t0 = performance.now();
  const child = track(Bun.spawn(command, { cwd: ROOT, stdin: "pipe", stdout: "pipe", stderr: "pipe" }));
  const stderrDone = drain(child.stderr, stderr);
  let exited = false;
  const exitedPromise = child.exited.then(() => {
    exited = true;
  });
  child.stdin.write(INITIALIZE);
  child.stdin.flush();

  // Read stdout line by line until the reply with id 1, then keep draining in the background.
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  const reply = (async (): Promise<boolean> => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return false;
      buffered += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (!line) continue;
        try {
          const message = JSON.parse(line) as { id?: unknown; result?: unknown; error?: unknown };
          if (message.id === 1) {
            if (message.error !== undefined) errors.push(`initialize error reply: ${line.slice(0, 200)}`);
            return true;
          }
        } catch {
          errors.push(`non-JSON line on stdout: ${line.slice(0, 200)}`);
        }
      }
    }
  })();
  let timer: Timer | undefined;
  const timedOut = new Promise<"timeout">((done) => (timer = setTimeout(() => done("timeout"), REPLY_TIMEOUT_MS)));
  const got = await Promise.race([reply, timedOut]);
  clearTimeout(timer);
  const t1 = performance.now();
  const stdoutDone = (async () => {
    if (got !== true) return;
    while (!(await reader.read()).done) {
      // discard what follows the reply
    }
  })().catch(() => {});

  if (got === true) {
    sample.startMs = t1 - t0;
    await sleep(IDLE_MS);
    if (!exited) sample.rssMB = vmRssMB(child.pid);
    if (sample.rssMB === undefined) errors.push("could not read VmRSS (process gone?)");
  } else {
    errors.push(got === "timeout" ? `no initialize reply within ${REPLY_TIMEOUT_MS} ms` : "stdout closed before the initialize reply");
  }

  try {
    child.stdin.end();
  } catch {
    // already closed: the child exited
  }
  await Promise.race([exitedPromise, sleep(EXIT_TIMEOUT_MS)]);
  if (!exited) {
    errors.push(`did not exit within ${EXIT_TIMEOUT_MS} ms of stdin closing; killed (SIGKILL)`);
    process.kill(child.pid, "SIGKILL");
    await exitedPromise;
  } else if (child.exitCode !== 0 && got === true) {
    errors.push(`exit code ${child.exitCode ?? child.signalCode}`);
  }
  // A grandchild could hold the pipes open after the child is gone: do not wait on it for long.
  const drained = Promise.all([stdoutDone, got === true ? undefined : reply.catch(() => {}), stderrDone.catch(() => {})]);
  await Promise.race([drained, sleep(1_000)]);
  if (errors.length > 0) {
    const last = tail(stderr);
    sample.error = errors.join("; ") + (last ? ` (stderr: ${last.slice(0, 300)})` : "");
  }
  return sample;
}

function build(args: string[], outfile: string): void {
  const result = Bun.spawnSync([process.execPath, "build", ...args, "--outfile", outfile], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  if (result.exitCode !== 0 || !existsSync(outfile)) {
    throw new BenchError(`bun build ${args.join(" ")} failed:\n${result.stderr.toString()}${result.stdout.toString()}`);
  }
}

interface Subject {
  name: string;
  path: string;
  command: string[];
  samples: Sample[];
}

function summarize(subject: Subject) {
  // A run that erred after replying (e.g. it had to be killed) still has valid figures: keep them.
  const starts = subject.samples.flatMap((s) => (s.startMs === undefined ? [] : [s.startMs]));
  const rss = subject.samples.flatMap((s) => (s.rssMB === undefined ? [] : [s.rssMB]));
  return {
    path: subject.path,
    sizeMB: round(statSync(subject.path).size / MB),
    startMs: roundStats(stats(starts)),
    idleRssMB: roundStats(stats(rss)),
    runs: subject.samples.length,
    errors: subject.samples.filter((s) => s.error !== undefined).map((s) => s.error!),
  };
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  if (!existsSync(options.binary)) fail(`${options.binary} does not exist: run scripts/build (or pass --binary PATH)`);
  const tmp = mkdtempSync(join(tmpdir(), "ipcscope-bench-"));
  try {
    log(`building the baseline${options.compareBytecode ? " and the no-bytecode build" : ""} in ${tmp}`);
    writeFileSync(join(tmp, "baseline.ts"), BASELINE_SOURCE);
    const baselinePath = join(tmp, "baseline");
    build([join(tmp, "baseline.ts"), "--compile", "--minify", "--bytecode", "--format=esm"], baselinePath);
    const subjects: Subject[] = [
      { name: "ipcscope", path: options.binary, command: [options.binary, "serve", "--no-monitor"], samples: [] },
      { name: "baseline", path: baselinePath, command: [baselinePath], samples: [] },
    ];
    if (options.compareBytecode) {
      const path = join(tmp, "ipcscope-nobytecode");
      build(["src/main.ts", "--compile", "--minify", "--format=esm"], path);
      subjects.push({ name: "ipcscope-nobytecode", path, command: [path, "serve", "--no-monitor"], samples: [] });
    }

    log(`${options.warmup} warm-up + ${options.runs} measured run(s) each, interleaved: ${subjects.map((s) => s.name).join(", ")}`);
    for (let i = 0; i < options.warmup; i++) for (const subject of subjects) await measure(subject.command);
    for (let i = 0; i < options.runs; i++) {
      for (const subject of subjects) subject.samples.push(await measure(subject.command));
    }

    const [binary, baseline, nobytecode] = subjects.map(summarize) as [
      ReturnType<typeof summarize>,
      ReturnType<typeof summarize>,
      ReturnType<typeof summarize> | undefined,
    ];
    const ratios = {
      startMedian: ratio(binary.startMs?.median, baseline.startMs?.median),
      idleRssMedian: ratio(binary.idleRssMB?.median, baseline.idleRssMB?.median),
      size: ratio(binary.sizeMB, baseline.sizeMB),
    };
    const goal = (name: string, value: number | undefined, limit: number, unit: string, strict: boolean) => ({
      name,
      value: value ?? null,
      limit,
      unit,
      pass: value !== undefined && (strict ? value < limit : value <= limit),
    });
    const goals = [
      goal("initialize reply (median)", binary.startMs?.median, GOALS.initMedianMs, "ms", false),
      goal("idle RSS (median)", binary.idleRssMB?.median, GOALS.idleRssMB, "MB", true),
      goal("binary size", binary.sizeMB, GOALS.binaryMB, "MB", true),
    ];
    const errorCount = subjects.reduce((n, s) => n + s.samples.filter((x) => x.error !== undefined).length, 0);
    const pass = goals.every((g) => g.pass);

    if (options.json) {
      const result = {
        runs: options.runs,
        warmup: options.warmup,
        idleMs: IDLE_MS,
        ipcscope: binary,
        baseline,
        nobytecode: nobytecode ?? null,
        ratios,
        goals,
        pass,
        errors: errorCount,
      };
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      process.stdout.write(table(options, binary, baseline, nobytecode, ratios, goals));
    }
    for (const subject of [binary, baseline, nobytecode]) {
      for (const error of subject?.errors ?? []) log(`error (${subject!.path}): ${error}`);
    }
    return options.check && (!pass || errorCount > 0) ? 1 : 0;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function table(
  options: Options,
  binary: ReturnType<typeof summarize>,
  baseline: ReturnType<typeof summarize>,
  nobytecode: ReturnType<typeof summarize> | undefined,
  ratios: { startMedian: number | null; idleRssMedian: number | null; size: number | null },
  goals: { name: string; value: number | null; limit: number; unit: string; pass: boolean }[],
): string {
  const row = (cells: string[]) => `${cells[0]!.padEnd(12)}${cells.slice(1).map((c) => c.padStart(11)).join("")}\n`;
  const line = (label: string, s: ReturnType<typeof summarize>) =>
    row([label, fixed(s.startMs?.median), fixed(s.startMs?.p90), fixed(s.startMs?.min), fixed(s.idleRssMB?.median), fixed(s.sizeMB), `${s.errors.length}/${s.runs}`]);
  let out = `ipcscope start-up: ${options.runs} interleaved runs each (+${options.warmup} warm-up), idle RSS read ${IDLE_MS} ms after the reply\n`;
  out += `  ipcscope = ${binary.path} serve\n  baseline = empty Bun stdio program, bun build --compile --minify --bytecode --format=esm\n\n`;
  out += row(["", "start med", "start p90", "start min", "RSS med", "size", "errors"]);
  out += row(["", "(ms)", "(ms)", "(ms)", "(MB)", "(MB)", ""]);
  out += line("ipcscope", binary);
  out += line("baseline", baseline);
  out += row(["ratio", times(ratios.startMedian), "", "", times(ratios.idleRssMedian), times(ratios.size), ""]);
  if (nobytecode) {
    const gain = binary.startMs && nobytecode.startMs ? nobytecode.startMs.median - binary.startMs.median : null;
    out += `\nwithout --bytecode: start median ${fixed(nobytecode.startMs?.median)} ms (p90 ${fixed(nobytecode.startMs?.p90)}), `;
    out += `so --bytecode saves ${fixed(gain)} ms; idle RSS ${fixed(nobytecode.idleRssMB?.median)} MB, size ${fixed(nobytecode.sizeMB)} MB\n`;
  }
  out += "\ngoals:\n";
  for (const g of goals) {
    const cmp = g.unit === "ms" ? "<=" : "<";
    out += `  ${g.pass ? "PASS" : "FAIL"}  ${g.name.padEnd(26)} ${fixed(g.value).padStart(7)} ${g.unit} ${cmp} ${g.limit} ${g.unit}\n`;
  }
  return out;
}

await runMain(main);
