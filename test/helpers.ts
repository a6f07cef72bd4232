// Shared by the tests: capability gates that fail in CI instead of skipping, and the compiled binary.
import { test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseStat } from "../src/snapshot/proc.ts";

export const ROOT = join(import.meta.dir, "..");
export const BINARY = join(ROOT, "dist", "ipcscope");
export const IN_CI = process.env.CI === "true";

export const isRoot = process.geteuid?.() === 0;
export const hasBpftrace = Bun.which("bpftrace") !== null;
export const hasTracefs = existsSync("/sys/kernel/tracing/events/sched") || existsSync("/sys/kernel/debug/tracing/events/sched");

/**
 * `test` when the requirement holds; otherwise `test.skip` on a developer machine, and in CI a
 * test that fails saying what is missing (CI must run everything).
 */
export function testIf(ok: boolean, requirement: string): typeof test {
  if (ok) return test;
  if (!IN_CI) return test.skip;
  const failing = ((name: string) =>
    test(name, () => {
      throw new Error(`cannot run in CI: needs ${requirement}`);
    })) as unknown as typeof test;
  return failing;
}

export const testWithBpf = testIf(isRoot && hasBpftrace && hasTracefs, "root, bpftrace and a mounted tracefs");

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Builds dist/ipcscope with scripts/build unless it is newer than every source and probe file. */
export async function ensureBinary(): Promise<string> {
  const sources = Math.max(newestMtime(join(ROOT, "src")), newestMtime(join(ROOT, "probes")), statSync(join(ROOT, "package.json")).mtimeMs);
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs > sources) return BINARY;
  const build = Bun.spawn([join(ROOT, "scripts", "build")], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [code, stderr] = await Promise.all([build.exited, new Response(build.stderr).text()]);
  if (code !== 0) throw new Error(`scripts/build failed (${code}):\n${stderr}`);
  return BINARY;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the compiled binary to completion with the given arguments. */
export async function runBinary(args: string[], options: { env?: Record<string, string> } = {}): Promise<RunResult> {
  const proc = Bun.spawn([await ensureBinary(), ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...options.env },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

export interface HttpServer {
  url: URL;
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  stderr: () => string;
  stop: () => Promise<number>;
}

/** Starts `ipcscope serve --http --port 0` (with extra environment variables) and waits for the line that names its URL. */
export async function startHttpServer(extraArgs: string[] = [], options: { env?: Record<string, string> } = {}): Promise<HttpServer> {
  const proc = Bun.spawn([await ensureBinary(), "serve", "--http", "--port", "0", ...extraArgs], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    // Bun.spawn does not see later changes to process.env: pass them explicitly.
    env: { ...process.env, ...options.env },
  });
  let stderr = "";
  const reader = proc.stderr.getReader();
  const decoder = new TextDecoder();
  const url = await new Promise<URL>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 10 s; stderr:\n${stderr}`)), 10_000);
    (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += decoder.decode(value, { stream: true });
        const match = /serving MCP at (https?:\/\/\S+\/mcp)/.exec(stderr);
        if (match) {
          clearTimeout(timer);
          resolve(new URL(match[1]!));
        }
      }
      clearTimeout(timer);
      reject(new Error(`server exited before listening (code ${await proc.exited}); stderr:\n${stderr}`));
    })().catch(reject);
  });
  // Keep draining stderr so the server never blocks on a full pipe.
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += decoder.decode(value, { stream: true });
    }
  })();
  return {
    url,
    proc,
    stderr: () => stderr,
    stop: async () => {
      proc.kill("SIGTERM");
      return proc.exited;
    },
  };
}

/** The first line a child prints (its ports, or "connected"); the stream stays readable after. */
export async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return text.split("\n")[0]!;
}

/** Whether a process exists (signal 0); tests use it only on pids they started. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A process as /proc/PID/stat shows it; `start` (ticks after boot) tells a reused pid apart. */
export interface Proc {
  pid: number;
  ppid: number;
  start: number;
  comm: string;
  state: string;
}

export function readStat(pid: number): Proc | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const stat = parseStat(text);
    if (!stat) return null;
    return { pid, ppid: stat.ppid, start: stat.start_time_ticks, state: stat.state, comm: text.slice(text.indexOf("(") + 1, text.lastIndexOf(")")) };
  } catch {
    return null; // exited while we looked
  }
}

/**
 * Spawns `sleep SECONDS` and waits until it has exec'd and is asleep (comm "sleep", state S):
 * before that the child is still a copy of bun, or running, and a test reading it would race.
 * The caller keeps the child to kill it by its pid.
 */
export async function spawnSleeper(seconds = 60): Promise<Bun.Subprocess> {
  const child = Bun.spawn(["sleep", String(seconds)], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  try {
    await until(`pid ${child.pid} to be asleep in sleep`, () => {
      const stat = readStat(child.pid);
      return stat?.comm === "sleep" && stat.state === "S" ? true : undefined;
    }, 10_000, 5);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return child;
}

/** Every process descending from `root` (ppid chains through /proc/PID/stat). */
export function descendants(root: number): Proc[] {
  const children = new Map<number, Proc[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (!stat) continue;
    children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), stat]);
  }
  const found: Proc[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child.pid);
    }
  }
  return found;
}

/** Polls `get` until it gives a value (not undefined), or fails after timeoutMs naming `what`. */
export async function until<T>(what: string, get: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await get();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}

/** The text parts of a tool result (an error's message), joined by newlines. */
export function resultText(result: object): string {
  return ((result as { content?: { text?: string }[] }).content ?? []).map((part) => part.text ?? "").join("\n");
}

/** What the stand-in model endpoint was sent. */
export interface ChatRequest {
  method: string;
  path: string;
  authorization: string | null;
  body: { model: string; messages: { role: string; content: string }[] };
}

/**
 * An OpenAI-compatible chat-completions endpoint standing in for a model (there is none here): it
 * records every request and answers `answer`; model "missing-model" gets a 404, "broken" a 500.
 */
export function startChatEndpoint(answer: string): { server: ReturnType<typeof Bun.serve>; requests: ChatRequest[] } {
  const requests: ChatRequest[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const path = new URL(request.url).pathname;
      const body = (await request.json()) as ChatRequest["body"];
      requests.push({ method: request.method, path, authorization: request.headers.get("authorization"), body });
      if (body.model === "missing-model") return Response.json({ error: { message: "model 'missing-model' not found" } }, { status: 404 });
      if (body.model === "broken") return new Response("upstream exploded", { status: 500 });
      return Response.json({ id: "x", object: "chat.completion", model: body.model, choices: [{ index: 0, message: { role: "assistant", content: answer }, finish_reason: "stop" }] });
    },
  });
  return { server, requests };
}
