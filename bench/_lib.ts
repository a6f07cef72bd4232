// What the benches share: messages with a "bench/<name>: " prefix, the options every bench has,
// child processes tracked by pid (so every exit path can kill them), stopping a child with
// escalation to SIGKILL, reading a child's output without ever blocking it, statistics, and
// starting `ipcscope serve --http --port 0`, and running the connect storm (bench/storm.py).
// node: and Bun APIs only.
//
// Importing this module installs handlers for SIGINT, SIGTERM, SIGHUP and exit that SIGKILL every
// tracked child still running: a bench that dies half-way must not leave load generators behind.
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { basename, join, resolve } from "node:path";

/** The repository root (bench/..). */
export const ROOT = resolve(import.meta.dir, "..");

/** The Python the benches' helper scripts run with: the system's, where python3-psutil installs. */
export const PYTHON = "/usr/bin/python3";

/** "bench/<script name>", the prefix of every message, from the entry point (bench/snapshot.ts → bench/snapshot). */
const NAME = `bench/${basename(Bun.main).replace(/\.ts$/, "")}`;

/** An expected failure (a child that never got ready, a wrong answer): main reports it and exits 2. */
export class BenchError extends Error {}

/** Prints the message on stderr and exits 2 (bad options, a missing tool, a BenchError). */
export function fail(message: string): never {
  process.stderr.write(`${NAME}: ${message}\n`);
  process.exit(2);
}

/** Progress on stderr, so stdout carries only the table or the JSON. */
export const log = (message: string) => process.stderr.write(`${NAME}: ${message}\n`);

/** Resolves after ms milliseconds. */
export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

// ---- options ----

/** The options every bench takes; each adds its own. */
export interface BaseOptions {
  runs: number;
  binary: string;
  json: boolean;
  check: boolean;
}

/** The default --binary: the build of scripts/build. */
export const DEFAULT_BINARY = join(ROOT, "dist/ipcscope");

/** The value of an integer option, or fail() naming the option and the bad value. */
export function integerOption(flag: string, value: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (value === undefined || value.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
    fail(`${flag} needs an integer from ${min} to ${max}, got ${JSON.stringify(value ?? "")}`);
  }
  return n;
}

/** --storm-cpu: a CPU number of this machine, or "any" (null: the scheduler places the storm). */
export function stormCpuOption(flag: string, value: string | undefined): number | null {
  const last = availableParallelism() - 1;
  if (value === "any") return null;
  if (value === undefined || !/^\d+$/.test(value) || Number(value) > last) fail(`${flag} needs a CPU number from 0 to ${last} or "any", got ${JSON.stringify(value ?? "")}`);
  return Number(value);
}

/**
 * Parses argv ("--flag value" or "--flag=value") into options: --runs, --binary, --json, --check and
 * --help here, every other flag through `own`, which returns false for a flag it does not know.
 */
export function parseOptions<T extends BaseOptions>(
  argv: string[],
  options: T,
  usage: string,
  own: (flag: string, value: () => string | undefined) => boolean,
): T {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case "--runs": options.runs = integerOption(flag, value(), 1); break;
      case "--binary": {
        const path = value();
        if (!path) fail("--binary needs a path");
        options.binary = resolve(path);
        break;
      }
      case "--json": options.json = true; break;
      case "--check": options.check = true; break;
      case "-h":
      case "--help":
        process.stdout.write(`${usage}\n`);
        process.exit(0);
      default: if (!own(flag, value)) fail(`unknown argument "${arg}"\n${usage}`);
    }
  }
  return options;
}

// ---- the processes a bench starts: tracked by pid so every exit path can kill them ----

const running = new Map<number, Bun.Subprocess>();

/** Registers a child so that a signal, an exception or the exit SIGKILLs it if it still runs. */
export function track<T extends Bun.Subprocess>(child: T): T {
  running.set(child.pid, child);
  void child.exited.then(() => running.delete(child.pid));
  return child;
}

/** Processes a child started (pid → a string its command line holds), killed along with the children. */
const adopted = new Map<number, string>();

/**
 * Registers a grandchild (e.g. the bpftrace a server runs) to be SIGKILLed with the children, since
 * killing its parent by SIGKILL may leave it running; the string guards against a reused pid.
 * Returns the function that forgets it again.
 */
export function adopt(pid: number, commandIncludes: string): () => void {
  adopted.set(pid, commandIncludes);
  return () => adopted.delete(pid);
}

/** Last resort (signal, exception, exit): SIGKILL each tracked child that has not exited yet, and each adopted process. */
export function killAllNow(): void {
  for (const [pid, child] of running) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  for (const [pid, needle] of adopted) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(needle)) process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    log(`${signal}: killing ${running.size} child process(es)`);
    killAllNow();
    process.exit(130);
  });
}
process.on("exit", killAllNow);

/** Ends a child gently (close stdin, or SIGTERM), then SIGKILL by pid after graceMs; true if it went gently. */
export async function stop(child: Bun.Subprocess, how: "stdin" | "SIGTERM", graceMs = 3_000): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  try {
    if (how === "stdin") (child.stdin as Bun.FileSink).end();
    else process.kill(child.pid, "SIGTERM");
  } catch {
    // already closed or gone
  }
  const gentle = await Promise.race([child.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!gentle) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // gone in between
    }
    await child.exited;
  }
  return gentle;
}

/** Runs a bench's main: its result becomes the exit code, a BenchError exits 2 with its message, and every tracked child is killed on the way out. */
export async function runMain(main: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await main();
  } catch (error) {
    killAllNow();
    if (!(error instanceof BenchError)) throw error;
    fail(error.message);
  } finally {
    killAllNow();
  }
}

// ---- reading a child's output ----

/** Output kept from a child, for error messages; capped so a chatty child cannot grow it without end. */
export interface Seen {
  text: string;
}
const SEEN_CAP = 16_384;

/** Drains a stream into a capped string, so a chatty child never blocks on a full pipe. */
export async function drain(stream: ReadableStream<Uint8Array>, sink: Seen): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    if (sink.text.length < SEEN_CAP) sink.text += decoder.decode(chunk, { stream: true });
  }
}

/** Reads lines from a stream until one matches, within timeoutMs; the rest is drained into `seen` in the background. */
export async function waitForLine(stream: ReadableStream<Uint8Array>, pattern: RegExp, timeoutMs: number, seen: Seen): Promise<RegExpMatchArray | null> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  const find = (async (): Promise<RegExpMatchArray | null> => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return null;
      const text = decoder.decode(value, { stream: true });
      if (seen.text.length < SEEN_CAP) seen.text += text;
      buffered += text;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        const match = pattern.exec(line);
        if (match) return match;
      }
    }
  })();
  let timer: Timer | undefined;
  const timeout = new Promise<null>((done) => (timer = setTimeout(() => done(null), timeoutMs)));
  const match = await Promise.race([find, timeout]);
  clearTimeout(timer);
  // Keep draining whatever follows so the child never blocks on a full pipe.
  void (async () => {
    if (match === null) return;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        if (seen.text.length < SEEN_CAP) seen.text += decoder.decode(value, { stream: true });
      }
    } catch {
      // stream closed
    }
  })();
  return match;
}

/** The last `lines` non-empty lines of a child's output, joined with " | ", for an error message. */
export const tail = (seen: Seen, lines = 3) => seen.text.trim().split("\n").slice(-lines).join(" | ");

// ---- the server ----

/** How long `serve --http` may take to log its address: start-up is ~50 ms, the rest is a busy machine's slack. */
const SERVER_START_TIMEOUT_MS = 10_000;

/** A running `ipcscope serve --http --port 0` and what it logged. */
export interface Server {
  child: Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** http://127.0.0.1:PORT, without a path. */
  url: string;
  stderr: Seen;
}

/** Starts `BINARY serve --http --port 0 [extra...]` (tracked) and reads its address from the log line on stderr. */
export async function startServer(binary: string, extra: string[] = []): Promise<Server> {
  const command = [binary, "serve", "--http", "--port", "0", ...extra];
  const child = track(Bun.spawn(command, { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" }));
  void drain(child.stdout, { text: "" }).catch(() => {});
  const seen: Seen = { text: "" };
  const match = await waitForLine(child.stderr, /serving MCP at (http:\/\/127\.0\.0\.1:\d+)\/mcp/, SERVER_START_TIMEOUT_MS, seen);
  if (!match) {
    await stop(child, "SIGTERM");
    throw new BenchError(`${command.slice(0, 5).join(" ")} did not log its address within ${SERVER_START_TIMEOUT_MS / 1000} s: ${seen.text.trim().slice(0, 300)}`);
  }
  return { child, url: match[1]!, stderr: seen };
}

// ---- statistics ----

/** Median, 90th percentile (nearest rank), minimum and maximum of a set of figures. */
export interface Stats {
  median: number;
  p90: number;
  min: number;
  max: number;
}

/** The Stats of `values`, or null when there are none. */
export function stats(values: number[]): Stats | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  const mid = sorted.length / 2;
  const median = sorted.length % 2 === 1 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, p90: at(0.9), min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** n rounded to `digits` decimals. */
export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Stats with every figure rounded to one decimal, for the JSON and the table. */
export const roundStats = (s: Stats | null): Stats | null =>
  s && { median: round(s.median), p90: round(s.p90), min: round(s.min), max: round(s.max) };

/** a / b rounded to two decimals, or null when either is missing or b is not positive. */
export const ratio = (a: number | undefined, b: number | undefined) =>
  a !== undefined && b !== undefined && b > 0 ? Math.round((a / b) * 100) / 100 : null;

/** A figure for the table: n with `digits` decimals, or "n/a". */
export const fixed = (n: number | null | undefined, digits = 1) => (n === null || n === undefined ? "n/a" : n.toFixed(digits));

/** A ratio for the table: "1.23x", or "n/a". */
export const times = (n: number | null) => (n === null ? "n/a" : `${n.toFixed(2)}x`);

// ---- the connect storm (bench/storm.py) ----

/** bench/storm.py, the loopback connect storm the throughput benches share. */
export const STORM = join(ROOT, "bench", "storm.py");
/** storm.py stops by itself after --seconds and dies by SIGALRM 30 s later; this is the bench's own bound on top. */
const STORM_SLACK_MS = 40_000;

/** The line storm.py prints at the end. */
export interface StormResult {
  connections: number;
  seconds: number;
  per_second: number;
  pid: number;
  server_pid: number;
  errors: number;
  rate: number | null;
  cpu: number | null;
}

/** Runs bench/storm.py (tracked) to its end, on CPU `cpu` only unless null, and returns its result line. */
export async function runStorm(seconds: number, cpu: number | null, rate?: number): Promise<StormResult> {
  const command = [PYTHON, STORM, "--seconds", String(seconds), ...(cpu === null ? [] : ["--cpu", String(cpu)]), ...(rate ? ["--rate", String(rate)] : [])];
  const child = track(Bun.spawn(command, { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" }));
  const stdout: Seen = { text: "" };
  const stderr: Seen = { text: "" };
  const output = Promise.all([drain(child.stdout, stdout), drain(child.stderr, stderr)]).catch(() => {});
  let timer: Timer | undefined;
  const bound = seconds * 1000 + STORM_SLACK_MS;
  const ended = await Promise.race([child.exited, new Promise<"timeout">((done) => (timer = setTimeout(() => done("timeout"), bound)))]);
  clearTimeout(timer);
  if (ended === "timeout") {
    await stop(child, "SIGTERM", 1_000);
    throw new BenchError(`${command.slice(1).join(" ")} still running after ${bound / 1000} s; killed`);
  }
  await Promise.race([output, sleep(1_000)]);
  try {
    const result = JSON.parse(stdout.text.trim().split("\n").at(-1) ?? "") as StormResult;
    if (typeof result.connections === "number" && typeof result.pid === "number") return result;
  } catch {
    // reported below
  }
  throw new BenchError(`storm.py: exit ${ended}, no result line (stderr: ${tail(stderr) || "none"})`);
}
