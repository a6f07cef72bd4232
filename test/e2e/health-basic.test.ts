// The health toolset's counter and bpftool tools through the compiled binary: interface traffic
// against a known UDP packet rate on a private loopback, a BPF program this test loads found by
// list_bpf_programs and its map read by dump_bpf_map, and bad inputs refused clearly.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { BpfMap, BpfProgram, MapEntry } from "../../src/health/bpftool.ts";
import type { InterfaceTraffic } from "../../src/health/traffic.ts";
import { ensureBinary, firstLine, hasBpftrace, hasTracefs, type HttpServer, isRoot, resultText, startHttpServer, testIf, until } from "../helpers.ts";

const PYTHON = "/usr/bin/python3";
const SBIN_PATH = `${process.env.PATH ?? ""}:/usr/local/sbin:/usr/sbin:/sbin`;
const hasBpftool = Bun.which("bpftool", { PATH: SBIN_PATH }) !== null;
const hasIp = Bun.which("ip", { PATH: SBIN_PATH }) !== null;
const hasPython = Bun.which(PYTHON) !== null;

// Sends UDP datagrams to its own bound socket at RATE per second for SECONDS, on a schedule kept
// against the monotonic clock (a late wake-up sends the datagrams it owes), then exits by itself.
const SENDER = `
import json, socket, sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.bind(("127.0.0.1", 0))
rx.setblocking(False)
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dest = rx.getsockname()
sent = 0
start = time.monotonic()
print("sending", flush=True)
while True:
    elapsed = time.monotonic() - start
    if elapsed >= seconds:
        break
    due = min(int(elapsed * rate) + 1, int(rate * seconds))
    while sent < due:
        tx.sendto(b"x" * 64, dest)
        sent += 1
    try:
        while True:
            rx.recv(2048)
    except BlockingIOError:
        pass
    time.sleep(0.001)
print(json.dumps({"sent": sent}), flush=True)
`;

/** A little-endian unsigned integer from bpftool's hex bytes ("0x2d", "0x01", ...). */
function littleEndian(bytes: unknown): bigint {
  return (bytes as string[]).reduceRight((value, byte) => (value << 8n) | BigInt(Number.parseInt(byte, 16)), 0n);
}

describe("get_interface_traffic on a private loopback", () => {
  const netns = `ipcscope-health-${process.pid}`;
  const RATE = 2000;
  let sender: Bun.Subprocess<"ignore", "pipe", "inherit"> | undefined;
  const mcp = new Client({ name: "e2e-health-traffic", version: "0" });

  afterAll(async () => {
    await mcp.close().catch(() => {});
    if (sender && sender.exitCode === null) sender.kill("SIGKILL");
    await sender?.exited;
    if (isRoot && hasIp) Bun.spawnSync(["ip", "netns", "del", netns], { stderr: "ignore" });
  });

  // A fresh network namespace: its lo carries only this test's datagrams, whatever else runs on the host.
  testIf(isRoot && hasIp && hasPython, "root, iproute2's ip and /usr/bin/python3")(
    "a known rate of UDP datagrams on lo is measured within 10%, each counted in and out, with progress",
    async () => {
      expect(Bun.spawnSync(["ip", "netns", "add", netns]).exitCode).toBe(0);
      expect(Bun.spawnSync(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"]).exitCode).toBe(0);
      await mcp.connect(new StdioClientTransport({ command: "ip", args: ["netns", "exec", netns, await ensureBinary(), "serve", "--no-monitor"] }));

      // 5 s of sending covers the 3 s window and the time to start it.
      sender = Bun.spawn(["ip", "netns", "exec", netns, PYTHON, "-c", SENDER, String(RATE), "5"], { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
      expect(await firstLine(sender.stdout)).toBe("sending");
      await Bun.sleep(300);
      const progress: number[] = [];
      const result = await mcp.callTool({ name: "get_interface_traffic", arguments: { interface: "lo", duration: 3 } }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      });
      expect(result.isError, resultText(result)).toBeFalsy();
      const answer = result.structuredContent as { interfaces: InterfaceTraffic[]; window_s: number; source: string; note: string; totals: { interfaces: number } };

      expect(answer.interfaces.map((entry) => entry.interface)).toEqual(["lo"]);
      const lo = answer.interfaces[0]!;
      for (const measured of [lo.rx_packets_per_s, lo.tx_packets_per_s]) {
        expect(measured).toBeGreaterThan(RATE * 0.9);
        expect(measured).toBeLessThan(RATE * 1.1);
      }
      // 64-byte payloads: 92-byte IP packets, as lo counts them.
      expect(lo.rx_bytes_per_s / lo.rx_packets_per_s).toBeCloseTo(92, 0);
      expect(lo).toMatchObject({ counter_reset: false, rx_errors_per_s: 0, rx_dropped_per_s: 0 });
      expect(answer.window_s).toBeGreaterThanOrEqual(3);
      expect(answer.window_s).toBeLessThan(3.5);
      expect(lo.window.rx_packets / answer.window_s).toBeCloseTo(lo.rx_packets_per_s, 0);
      expect(answer.totals.interfaces).toBe(1);
      expect(answer.source).toBe("/proc/net/dev");
      expect(answer.note).toContain("per-port");
      expect(progress.length).toBeGreaterThanOrEqual(2);

      expect(await sender.exited).toBe(0);
    },
    30_000,
  );
});

describe("health tools over HTTP", () => {
  let server: HttpServer;
  const mcp = new Client({ name: "e2e-health", version: "0" });

  beforeAll(async () => {
    server = await startHttpServer(["--no-monitor"]);
    await mcp.connect(new StreamableHTTPClientTransport(server.url));
  }, 60_000);

  afterAll(async () => {
    await mcp.close().catch(() => {});
    await server?.stop();
  });

  async function call<T>(name: string, args: Record<string, unknown>): Promise<T> {
    const result = await mcp.callTool({ name, arguments: args });
    expect(result.isError, resultText(result)).toBeFalsy();
    return result.structuredContent as T;
  }

  testIf(isRoot && hasBpftrace && hasTracefs && hasBpftool, "root, bpftrace, bpftool and a mounted tracefs")(
    "list_bpf_programs finds a program this test loaded, with its process, and dump_bpf_map reads its counter",
    async () => {
      const tracer = Bun.spawn(["bpftrace", "-e", "tracepoint:syscalls:sys_enter_getppid { @c = count(); }"], {
        stdin: "ignore",
        stdout: "pipe",
        stderr: "ignore",
      });
      try {
        expect(await firstLine(tracer.stdout)).toMatch(/^Attaching 1 probe/);
        type Listing = { programs: BpfProgram[]; maps: BpfMap[]; totals: { programs: number; matched: number }; truncated: boolean; pids_source: string };
        // bpftrace prints "Attaching" before it attaches: wait until the kernel lists the program.
        const { listing, program } = await until("bpftrace's program to be listed", async () => {
          const listing = await call<Listing>("list_bpf_programs", { type: "tracepoint", name: "sys_enter_getpp", include_maps: true });
          const program = listing.programs.find((p) => p.pids.some((holder) => holder.pid === tracer.pid));
          return program ? { listing, program } : undefined;
        }, 20_000, 200);
        expect(program).toMatchObject({ type: "tracepoint", name: "sys_enter_getpp", uid: 0 });
        expect(program.pids.find((holder) => holder.pid === tracer.pid)!.comm).toBe("bpftrace");
        expect(Date.parse(program.loaded_at!)).toBeGreaterThan(Date.now() - 120_000);
        expect(program.tag).toMatch(/^[0-9a-f]{16}$/);
        expect(listing.programs.every((p) => p.type === "tracepoint" && p.name!.includes("sys_enter_getpp"))).toBe(true);
        expect(listing.totals.programs).toBeGreaterThanOrEqual(listing.totals.matched);

        // @c = count() is a per-CPU array named AT_c with one u64 per CPU.
        const counter = listing.maps.find((map) => program.map_ids.includes(map.id) && map.name === "AT_c")!;
        expect(counter).toMatchObject({ type: "percpu_array", key_size: 4, value_size: 8, max_entries: 1 });
        const calls = Bun.spawnSync([PYTHON, "-c", "import os\nfor _ in range(500): os.getppid()"]);
        expect(calls.exitCode).toBe(0);

        const dump = await call<{ map: BpfMap; entries: MapEntry[]; total_entries: number; truncated: boolean; format: string }>("dump_bpf_map", { id: counter.id });
        expect(dump.map).toMatchObject({ id: counter.id, type: "percpu_array", name: "AT_c", key_size: 4, value_size: 8 });
        expect(dump).toMatchObject({ total_entries: 1, truncated: false, format: "hex" });
        const perCpu = dump.entries[0]!.values!;
        expect(perCpu.length).toBeGreaterThanOrEqual(1);
        const count = perCpu.reduce((sum, { value }) => sum + littleEndian(value), 0n);
        // Our 500 calls at least; anything else on the host calling getppid adds to them.
        expect(count).toBeGreaterThanOrEqual(500n);

        // By name: ours, or (when another AT_c is loaded) a refusal that lists ours among the candidates.
        const byName = await mcp.callTool({ name: "dump_bpf_map", arguments: { name: "AT_c", max_entries: 1 } });
        if (byName.isError) expect(resultText(byName)).toMatch(new RegExp(`maps are called "AT_c": .*\\b${counter.id} \\(AT_c, percpu_array\\)`));
        else expect((byName.structuredContent as { map: BpfMap }).map.id).toBe(counter.id);
      } finally {
        tracer.kill("SIGINT");
        const timer = setTimeout(() => tracer.kill("SIGKILL"), 5_000);
        await tracer.exited;
        clearTimeout(timer);
      }
    },
    60_000,
  );

  test("bad traffic inputs are refused with the parameter and the value, and the server still answers", async () => {
    const unknown = await mcp.callTool({ name: "get_interface_traffic", arguments: { interface: "nosuch0" } });
    expect(unknown.isError).toBe(true);
    expect(resultText(unknown)).toContain('interface: no interface "nosuch0" in /proc/net/dev; known: ');
    expect(resultText(unknown)).toMatch(/known: .*\blo\b/);

    const zero = await mcp.callTool({ name: "get_interface_traffic", arguments: { duration: 0 } });
    expect(zero.isError).toBe(true);
    expect(resultText(zero)).toContain("duration");
    expect(resultText(zero)).toContain("got 0");
    const long = await mcp.callTool({ name: "get_interface_traffic", arguments: { duration: 56 } });
    expect(resultText(long)).toContain("must be at most 55, got 56");

    const neither = await mcp.callTool({ name: "dump_bpf_map", arguments: {} });
    expect(neither.isError).toBe(true);
    expect(resultText(neither)).toContain("give id or name");

    const ok = await call<{ interfaces: InterfaceTraffic[]; window_s: number }>("get_interface_traffic", { duration: 0.2 });
    expect(ok.interfaces.some((entry) => entry.interface === "lo")).toBe(true);
    expect(ok.window_s).toBeGreaterThanOrEqual(0.2);
  });

  testIf(isRoot && hasBpftool, "root and bpftool")("an unknown map id or name is refused with the value and what to do, and the server still answers", async () => {
    const id = await mcp.callTool({ name: "dump_bpf_map", arguments: { id: 999_999_999 } });
    expect(id.isError).toBe(true);
    expect(resultText(id)).toContain("id 999999999: bpftool failed: get map by id (999999999): No such file or directory");
    expect(resultText(id)).toContain("list_bpf_programs include_maps=true");

    const name = await mcp.callTool({ name: "dump_bpf_map", arguments: { name: "no_such_map_42" } });
    expect(name.isError).toBe(true);
    expect(resultText(name)).toContain('name: no map called "no_such_map_42"');

    const listing = await call<{ totals: { programs: number } }>("list_bpf_programs", { limit: 1 });
    expect(listing.totals.programs).toBeGreaterThanOrEqual(0);
    expect((await fetch(new URL("/health", server.url))).status).toBe(200);
  });
});
