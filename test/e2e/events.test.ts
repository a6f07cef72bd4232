// Connection events end to end: the compiled binary's monitor runs the real bpftrace probe on real
// tracepoints, a workload made here does one of each thing on loopback, and the MCP SDK client asks
// the tools about it — also after the workload has exited. Then the failure cases: the probe killed
// (restart and gap), the server SIGKILLed (no probe left), and the ss-poll fallback.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { EventView } from "../../src/events/view.ts";
import { alive, hasBpftrace, hasTracefs, isRoot, ROOT, startHttpServer, testIf, testWithBpf, until, type HttpServer } from "../helpers.ts";

const WORKLOAD = join(ROOT, "test", "fixtures", "bin", "connection-workload.py");
const PYTHON = "/usr/bin/python3";
const canTrace = isRoot && hasBpftrace && hasTracefs;

interface MonitorHealth {
  source: string;
  probe: { state: string; pid: number | null; restarts: number; bad_lines: number; lost_events: number; gaps: { from_ms: number; to_ms: number | null }[] } | null;
  poll: { polls: number } | null;
}

async function monitorHealth(server: HttpServer): Promise<MonitorHealth> {
  const health = (await (await fetch(new URL("/health", server.url))).json()) as { background: { monitor?: MonitorHealth } };
  if (!health.background.monitor) throw new Error(`no monitor in /health: ${JSON.stringify(health)}`);
  return health.background.monitor;
}

async function runWorkload(dir: string, program = PYTHON): Promise<{ pid: number; port: number; closed_port: number; unix_path: string; missing_path: string }> {
  const child = Bun.spawn([program, WORKLOAD, dir], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (code !== 0) throw new Error(`workload failed (${code}): ${err}`);
  return JSON.parse(out);
}

describe("connection events from the eBPF monitor", () => {
  let server: HttpServer;
  const mcp = new Client({ name: "e2e-events", version: "0" });
  const dir = mkdtempSync(join(tmpdir(), "ipcscope-events-"));

  beforeAll(async () => {
    if (!canTrace) return;
    server = await startHttpServer();
    await mcp.connect(new StreamableHTTPClientTransport(server.url));
    await until("the probe to run", async () => ((await monitorHealth(server)).probe?.state === "running" ? true : undefined), 30_000);
  });

  afterAll(async () => {
    if (!canTrace) return;
    await mcp.close().catch(() => {});
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function call<T = Record<string, unknown>>(name: string, args: Record<string, unknown>): Promise<T> {
    const result = await mcp.callTool({ name, arguments: args });
    expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    return result.structuredContent as T;
  }

  async function eventsOf(pid: number, expected: number): Promise<EventView[]> {
    return until(`${expected} events of pid ${pid}`, async () => {
      const answer = await call<{ events: EventView[] }>("list_connections", { pid, since: 120, limit: 100 });
      return answer.events.length >= expected ? answer.events : undefined;
    });
  }

  testWithBpf("each thing the workload did is recorded with its pid, after the workload has exited", async () => {
    const work = await runWorkload(dir);
    expect(alive(work.pid)).toBe(false);
    // exec, exit, and: listen ×1 (TCP; Unix listens are not TCP), connect tcp, accept, close ×2, refused, udp, unix ×2.
    const events = (await eventsOf(work.pid, 11)).filter((e) => e.type !== "exec" && e.type !== "exit");
    const find = (predicate: (e: EventView) => boolean, what: string) => {
      const found = events.find(predicate);
      if (!found) throw new Error(`no ${what} in ${JSON.stringify(events, null, 1)}`);
      return found;
    };
    expect(events.every((e) => e.command === "python3" && e.source === "ebpf")).toBe(true);
    find((e) => e.type === "listen" && e.local_port === work.port, "listen");
    const connect = find((e) => e.type === "connect" && e.protocol === "tcp" && e.destination_port === work.port, "tcp connect");
    expect(connect.latency_us).toBeGreaterThan(0);
    expect(connect).toMatchObject({ address_family: "ipv4", socket_type: "stream", destination_ip: "127.0.0.1" });
    find((e) => e.type === "accept" && e.local_port === work.port, "accept");
    const closes = events.filter((e) => e.type === "close" && (e.local_port === work.port || e.destination_port === work.port));
    expect(closes).toHaveLength(2);
    for (const close of closes) {
      expect(close.duration_ms).toBeGreaterThanOrEqual(0);
      expect(close.bytes_sent).toBeGreaterThanOrEqual(1000);
      expect(close.bytes_received).toBeGreaterThanOrEqual(1000);
    }
    expect(find((e) => e.type === "connect_failed" && e.destination_port === work.closed_port, "refused connect")).toMatchObject({ reason: "refused" });
    expect(find((e) => e.protocol === "udp", "udp connect")).toMatchObject({ type: "connect", destination_port: 9, return_code: 0, socket_type: "dgram" });
    expect(find((e) => e.protocol === "unix" && e.path === work.unix_path, "unix connect")).toMatchObject({ return_code: 0 });
    expect(find((e) => e.protocol === "unix" && e.path === work.missing_path, "failed unix connect")).toMatchObject({ return_code: -2, reason: "ENOENT" });
  });

  testWithBpf("a short-lived program is found by its name after it exited, with what it connected to and what failed", async () => {
    // A copy of python under a name of our own, so the command filter finds this run only.
    const program = join(dir, "ipcscope-e2e-cli");
    copyFileSync(PYTHON, program);
    Bun.spawnSync(["chmod", "755", program]);
    const work = await runWorkload(dir, program);
    const summary = await until("the summary", async () => {
      const answer = await call<{ attempts: number; established: number; failed: { total: number; by_reason: Record<string, number> }; top_destinations: { remote_port: number }[]; processes: { pid: number; path: string | null }[] }>(
        "get_connection_summary",
        { command: "ipcscope-e2e", since: 120 },
      );
      // The exec (the path) and the connects reach the store in separate batches: wait for both.
      return answer.attempts >= 2 && answer.processes[0]?.path ? answer : undefined;
    });
    expect(summary).toMatchObject({ attempts: 2, established: 1, failed: { total: 1, by_reason: { refused: 1 } } });
    // TCP attempts and the UDP connect (to port 9) are destinations alike.
    const byPort = (a: number, b: number) => a - b;
    expect(summary.top_destinations.map((d) => d.remote_port).sort(byPort)).toEqual([9, work.port, work.closed_port].sort(byPort));
    expect(summary.processes[0]).toMatchObject({ pid: work.pid });
    expect(summary.processes[0]!.path).toBe(program);
  });

  testWithBpf("get_live_network_events sees a connection made during the capture, and reports progress", async () => {
    const progress: number[] = [];
    const pending = mcp.callTool(
      { name: "get_live_network_events", arguments: { duration: 3, command: "python3", type: ["connect", "connect_failed"] } },
      undefined,
      { onprogress: (p) => progress.push(p.progress) },
    );
    await Bun.sleep(500);
    const work = await runWorkload(dir);
    const result = (await pending).structuredContent as { source: string; events: EventView[]; lost_events: number; complete: boolean; note?: string; done: boolean };
    expect(result.source).toBe("ebpf");
    expect(result.done).toBe(true);
    // A quiet host, a running probe: nothing lost, nothing missing, so no note.
    expect(result).toMatchObject({ lost_events: 0, complete: true });
    expect(result.note).toBeUndefined();
    expect(result.events.filter((e) => e.pid === work.pid).map((e) => e.type).sort()).toEqual(["connect", "connect", "connect", "connect", "connect_failed"]);
    expect(progress.length).toBeGreaterThanOrEqual(2);
  });

  testWithBpf("a background capture job gathers events until stopped", async () => {
    const job = await call<{ job_id: string; done: boolean }>("get_live_network_events", { duration: 60, command: "python3", background: true });
    expect(job.done).toBe(false);
    const work = await runWorkload(dir);
    const partial = await until("the job to see the workload", async () => {
      const answer = await call<{ events: EventView[]; lost_events: number; complete: boolean }>("get_capture_results", { job_id: job.job_id });
      return answer.events.some((e) => e.pid === work.pid && e.type === "close") ? answer : undefined;
    });
    expect(partial.events.length).toBeGreaterThan(0);
    const stopped = await call<{ done: boolean; events: EventView[]; lost_events: number; complete: boolean }>("stop_capture", { job_id: job.job_id });
    expect(stopped.done).toBe(true);
    // The job's own window, from its start to its stop: the probe ran throughout.
    expect(partial).toMatchObject({ lost_events: 0, complete: true });
    expect(stopped).toMatchObject({ lost_events: 0, complete: true });
    const unknown = await mcp.callTool({ name: "get_capture_results", arguments: { job_id: "cap-nope" } });
    expect(unknown.isError).toBe(true);
    expect(JSON.stringify(unknown.content)).toContain("cap-nope");
  });

  testWithBpf("wait_for_connection returns the next matching connection", async () => {
    const pending = call<{ found: boolean; event?: EventView; lost_events: number; complete: boolean }>("wait_for_connection", { command: "python3", type: "connect_failed", timeout: 20 });
    await Bun.sleep(500);
    const work = await runWorkload(dir);
    const answer = await pending;
    expect(answer.found).toBe(true);
    expect(answer).toMatchObject({ lost_events: 0, complete: true });
    expect(answer.event).toMatchObject({ pid: work.pid, type: "connect_failed", destination_port: work.closed_port });
    const nothing = await call<{ found: boolean }>("wait_for_connection", { port: 1, timeout: 1 });
    expect(nothing.found).toBe(false);
  });

  testWithBpf("a probe killed with SIGKILL is restarted and the gap is recorded; nothing is lost after", async () => {
    const before = await monitorHealth(server);
    process.kill(before.probe!.pid!, "SIGKILL");
    const after = await until("the probe to come back", async () => {
      const health = await monitorHealth(server);
      return health.probe?.state === "running" && health.probe.pid !== before.probe!.pid ? health : undefined;
    });
    expect(after.probe!.restarts).toBe(before.probe!.restarts + 1);
    const gap = after.probe!.gaps.at(-1)!;
    expect(gap.to_ms).toBeGreaterThanOrEqual(gap.from_ms);
    expect(alive(before.probe!.pid!)).toBe(false);
    // A window over the gap says so, in its fields and as the first text item, before the JSON.
    const answer = await mcp.callTool({ name: "list_connections", arguments: { since: 120, limit: 1 } });
    const structured = answer.structuredContent as { lost_events: number; complete: boolean; note: string };
    expect(structured.complete).toBe(false);
    expect(structured.lost_events).toBeGreaterThanOrEqual(0);
    expect(structured.note).toMatch(/the probe was down for [\d.]+ (s|min) in this window \((restart|\d+ restarts)\)/);
    const content = answer.content as { type: string; text: string }[];
    expect(content[0]).toEqual({ type: "text", text: structured.note });
    expect(JSON.parse(content[1]!.text)).toEqual(structured);
    const work = await runWorkload(dir);
    expect((await eventsOf(work.pid, 11)).length).toBeGreaterThanOrEqual(11);
    // After the gap, a window that starts later is complete again.
    await Bun.sleep(Math.max(0, gap.to_ms! + 2_000 - Date.now()));
    const later = await call<{ complete: boolean; note?: string }>("get_connection_summary", { pid: work.pid, since: (Date.now() - gap.to_ms!) / 1000 - 0.5 });
    expect(later.complete, later.note).toBe(true);
  });
});

describe("no orphans", () => {
  testWithBpf("SIGKILL of the server leaves no bpftrace behind after 2 s", async () => {
    const server = await startHttpServer();
    const probe = await until("the probe to run", async () => {
      const health = await monitorHealth(server);
      return health.probe?.state === "running" ? health.probe.pid! : undefined;
    }, 30_000);
    expect(alive(probe)).toBe(true);
    server.proc.kill("SIGKILL");
    await server.proc.exited;
    await until("the probe to die", () => (alive(probe) ? undefined : true), 2_500);
  });

  testWithBpf("SIGTERM of the server stops the probe and exits 0", async () => {
    const server = await startHttpServer();
    const probe = await until("the probe to run", async () => {
      const health = await monitorHealth(server);
      return health.probe?.state === "running" ? health.probe.pid! : undefined;
    }, 30_000);
    expect(await server.stop()).toBe(0);
    expect(alive(probe)).toBe(false);
  });
});

describe("without eBPF", () => {
  testIf(isRoot, "root (to see every process's sockets)")("--events-source ss-poll records connections that live across two polls, marked ss-poll", async () => {
    const server = await startHttpServer(["--events-source", "ss-poll"]);
    try {
      await until("a first poll", async () => ((await monitorHealth(server)).poll?.polls ?? 0) > 0 ? true : undefined);
      const health = await monitorHealth(server);
      expect(health.source).toBe("ss-poll");
      expect(health.probe).toBeNull();
      // A connection held for 5 s: at least two polls (2 s apart) see it.
      const holder = Bun.spawn([PYTHON, "-c", [
        "import socket, time",
        "l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)",
        "c = socket.create_connection(l.getsockname()); s, _ = l.accept()",
        "print(l.getsockname()[1], flush=True); time.sleep(5)",
      ].join("\n")], { stdout: "pipe" });
      const port = Number((await new Response(holder.stdout).text()).trim().split("\n")[0]);
      await holder.exited;
      const answer = await until("the polled connect", async () => {
        const response = await fetch(new URL(`/list_connections?port=${port}&since=60`, server.url));
        const body = (await response.json()) as { source: string; events: EventView[]; complete: boolean; lost_events: number; note?: string };
        return body.events.some((e) => e.type === "connect") && body.events.some((e) => e.type === "close") ? body : undefined;
      });
      expect(answer.source).toBe("ss-poll");
      expect(answer).toMatchObject({ lost_events: 0, complete: false, note: expect.stringMatching(/^events come from ss polling, which samples every [\d.]+ s: short-lived connections are missed\.$/) });
      expect(answer.events.every((e) => e.source === "ss-poll")).toBe(true);
      expect(answer.events.find((e) => e.type === "connect")).toMatchObject({ pid: holder.pid, command: "python3", destination_port: port });
    } finally {
      await server.stop();
    }
  });
});

describe("ipcscope events (CLI)", () => {
  /** Reads a child's stderr until a line matches (the CLI says when its source is ready); keeps the text. */
  async function waitForStderr(stream: ReadableStream<Uint8Array>, pattern: RegExp, seen: { text: string }): Promise<void> {
    const reader = stream.getReader();
    const decoder = new TextDecoder();
    const end = Date.now() + 30_000;
    while (!pattern.test(seen.text)) {
      if (Date.now() > end) throw new Error(`no ${pattern} on stderr: ${seen.text}`);
      const { value, done } = await reader.read();
      if (done) throw new Error(`stderr closed before ${pattern}: ${seen.text}`);
      seen.text += decoder.decode(value, { stream: true });
    }
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        seen.text += decoder.decode(value, { stream: true });
      }
    })();
  }

  testWithBpf("streams the workload's events as NDJSON with --json, and as lines for people without", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ipcscope-events-cli-"));
    try {
      for (const json of [true, false]) {
        const cli = Bun.spawn([join(ROOT, "dist", "ipcscope"), "events", "--duration", "4", "--command", "python3", ...(json ? ["--json"] : [])], {
          stdout: "pipe",
          stderr: "pipe",
        });
        const stderr = { text: "" };
        await waitForStderr(cli.stderr, /watching connection events from ebpf/, stderr);
        const work = await runWorkload(dir);
        const [out, code] = await Promise.all([new Response(cli.stdout).text(), cli.exited]);
        expect(code, stderr.text).toBe(0);
        if (json) {
          const events = out.trim().split("\n").map((line) => JSON.parse(line) as EventView);
          const types = events.filter((e) => e.pid === work.pid).map((e) => e.type);
          expect(types).toContain("connect_failed");
          expect(types).toContain("accept");
        } else {
          expect(out.split("\n")[0]).toMatch(/^TIME\s+TYPE\s+PROCESS\[PID\]\s+DETAILS/);
          expect(out).toMatch(new RegExp(`connect_failed\\s+python3\\[${work.pid}\\]\\s+tcp\\s+127\\.0\\.0\\.1:${work.closed_port}.*refused`));
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
