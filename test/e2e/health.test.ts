// Kernel network health end to end, with real faults made here: an iptables DROP rule on a loopback
// port (drops with the netfilter reason and the port), a connect to a closed port (a reset each
// way), and a lossy path between two network namespaces (iptables dropping 20% at random: this
// kernel has no netem) for retransmits attributed to the right connection and process. The
// compiled binary runs the probes under bpftrace; the MCP SDK client asks over HTTP. Every rule and
// namespace is removed in afterAll / finally, also when a test fails.
import { afterAll, beforeAll, describe, expect } from "bun:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { hasBpftrace, hasTracefs, isRoot, resultText, startHttpServer, testIf, until, type HttpServer } from "../helpers.ts";

const canTrace = isRoot && hasBpftrace && hasTracefs;
const hasIptables = Bun.which("iptables") !== null && Bun.which("ip") !== null;
const testFaults = testIf(canTrace && hasIptables, "root, bpftrace, a mounted tracefs, iptables and ip");
const PYTHON = "/usr/bin/python3";
const TAG = `ipcscope-test-${process.pid}`;
const NS_CLIENT = `ipcs-c-${process.pid}`;
const NS_SERVER = `ipcs-s-${process.pid}`;

function run(argv: string[], check = true): { code: number; out: string; err: string } {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  const res = { code: result.exitCode ?? -1, out: result.stdout.toString(), err: result.stderr.toString() };
  if (check && res.code !== 0) throw new Error(`${argv.join(" ")} failed (${res.code}): ${res.err}`);
  return res;
}

/** A free TCP port on 127.0.0.1 (bound then released). */
function freePort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

type Structured = Record<string, unknown> & { job_id?: string; result?: Record<string, unknown> };

describe("kernel network health with real faults", () => {
  let server: HttpServer;
  const mcp = new Client({ name: "e2e-health", version: "0" });
  const rules: string[][] = [];

  beforeAll(async () => {
    if (!canTrace || !hasIptables) return;
    server = await startHttpServer(["--no-monitor"]);
    await mcp.connect(new StreamableHTTPClientTransport(server.url));
  });

  afterAll(async () => {
    for (const rule of rules) run(["iptables", "-D", ...rule], false);
    run(["ip", "netns", "del", NS_CLIENT], false);
    run(["ip", "netns", "del", NS_SERVER], false);
    await mcp.close().catch(() => {});
    await server?.stop();
  });

  async function call(name: string, args: Record<string, unknown>): Promise<Structured> {
    const result = await mcp.callTool({ name, arguments: args }, undefined, { timeout: 90_000 });
    if (result.isError) throw new Error(`${name}: ${JSON.stringify(result.content)}`);
    return result.structuredContent as Structured;
  }

  /** Starts a tool as a background job, waits until its probe is attached, runs `fault`, stops the job: its final answer. */
  async function around(name: string, args: Record<string, unknown>, fault: () => Promise<void>): Promise<Record<string, unknown>> {
    const started = await call(name, { ...args, background: true, duration: 60 });
    const id = started.job_id!;
    expect(id).toBeString();
    await until(`${name}'s probe to attach`, async () => {
      const now = await call("get_capture_results", { job_id: id });
      if (now.result?.error) throw new Error(`probe failed: ${now.result.error}`);
      return now.result?.started_at ? true : undefined;
    }, 45_000, 200);
    await fault();
    // Let the last print of the maps see the fault (they print every second; stop prints them once more).
    await Bun.sleep(300);
    const stopped = await call("stop_capture", { job_id: id });
    expect(stopped.kind).toBe(name);
    expect(stopped.done).toBe(true);
    return stopped.result!;
  }

  testFaults("an iptables DROP on a loopback port: drops with reason NETFILTER_DROP and the port", async () => {
    const port = freePort();
    const rule = ["INPUT", "-p", "tcp", "--dport", String(port), "-j", "DROP", "-m", "comment", "--comment", TAG];
    run(["iptables", "-I", ...rule]);
    rules.push(rule);
    try {
      const knock = async () => {
        // Three SYNs that the rule drops (each connect times out after 0.3 s).
        run([PYTHON, "-c", `import socket\nfor _ in range(3):\n  s=socket.socket(); s.settimeout(0.3)\n  try: s.connect(("127.0.0.1", ${port}))\n  except OSError: pass\n  s.close()`]);
      };
      const summary = await around("get_packet_drop_summary", { port }, knock);
      expect(summary.kernel_has_reasons).toBe(true);
      expect(summary.port_filter).toBe(port);
      expect(summary.total_drops as number).toBeGreaterThanOrEqual(3);
      const reasons = summary.by_reason as { reason: string; drops: number }[];
      expect(reasons.find((r) => r.reason === "NETFILTER_DROP")?.drops ?? 0).toBeGreaterThanOrEqual(3);
      expect(summary.by_port).toContainEqual(expect.objectContaining({ protocol: "tcp", port }));
      expect((summary.by_interface as { interface: string }[])[0]!.interface).toBe("lo");

      const list = await around("list_packet_drops", { port, max_events: 10 }, knock);
      const drops = list.drops as { reason: string; destination: string; protocol: string }[];
      expect(drops.length).toBeGreaterThanOrEqual(3);
      expect(drops[0]).toMatchObject({ reason: "NETFILTER_DROP", protocol: "tcp", destination: `127.0.0.1:${port}` });
    } finally {
      run(["iptables", "-D", ...rule], false);
      rules.splice(rules.indexOf(rule), 1);
    }
  }, 120_000);

  testFaults("a connect to a closed port: a reset sent and a reset received, with the port", async () => {
    const port = freePort();
    const health = await around("get_tcp_health", { port }, async () => {
      run([PYTHON, "-c", `import socket\ns=socket.socket()\ntry: s.connect(("127.0.0.1", ${port}))\nexcept ConnectionRefusedError: pass`]);
    });
    const totals = health.totals as { resets_sent: number; resets_received: number };
    expect(totals.resets_sent).toBeGreaterThanOrEqual(1);
    expect(totals.resets_received).toBeGreaterThanOrEqual(1);
    const connections = health.connections as { local: string; remote: string; resets_sent: number; resets_received: number; state: string }[];
    expect(connections.find((c) => c.local === `127.0.0.1:${port}`)?.resets_sent).toBeGreaterThanOrEqual(1);
    expect(connections.find((c) => c.remote === `127.0.0.1:${port}`)).toMatchObject({ state: "SYN_SENT" });
  }, 120_000);

  testFaults("a lossy path between two namespaces: retransmits on the right connection and process", async () => {
    // client ns 10.231.0.1 <-veth-> 10.231.0.2 server ns; the server drops 20% of what comes in.
    run(["ip", "netns", "add", NS_CLIENT]);
    run(["ip", "netns", "add", NS_SERVER]);
    run(["ip", "link", "add", "ipcs-c0", "netns", NS_CLIENT, "type", "veth", "peer", "name", "ipcs-s0", "netns", NS_SERVER]);
    run(["ip", "-n", NS_CLIENT, "addr", "add", "10.231.0.1/24", "dev", "ipcs-c0"]);
    run(["ip", "-n", NS_SERVER, "addr", "add", "10.231.0.2/24", "dev", "ipcs-s0"]);
    for (const ns of [NS_CLIENT, NS_SERVER]) {
      run(["ip", "-n", ns, "link", "set", "lo", "up"]);
      run(["ip", "-n", ns, "link", "set", ns === NS_CLIENT ? "ipcs-c0" : "ipcs-s0", "up"]);
    }
    run(["ip", "netns", "exec", NS_SERVER, "iptables", "-I", "INPUT", "-p", "tcp", "--dport", "5201", "-m", "statistic", "--mode", "random", "--probability", "0.2", "-j", "DROP"]);
    // Bounded: the server reads for 20 s at most; the client sends for 3 s.
    const serverProc = Bun.spawn(["ip", "netns", "exec", NS_SERVER, PYTHON, "-c",
      "import socket,signal\nsignal.alarm(20)\nl=socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(('10.231.0.2',5201)); l.listen()\nprint('ready', flush=True)\nc,_=l.accept()\nwhile c.recv(65536): pass"],
      { stdout: "pipe", stderr: "inherit" });
    const reader = serverProc.stdout.getReader();
    await reader.read();
    let clientPid = 0;
    try {
      const health = await around("get_tcp_health", { port: 5201 }, async () => {
        const client = Bun.spawn(["ip", "netns", "exec", NS_CLIENT, PYTHON, "-c",
          "import socket,time,os,signal\nsignal.alarm(15)\ns=socket.create_connection(('10.231.0.2',5201))\nprint(os.getpid(), flush=True)\nend=time.time()+3\nwhile time.time()<end: s.send(b'x'*16384)\ntime.sleep(1.5)\ns.close()"],
          { stdout: "pipe", stderr: "inherit" });
        const out = client.stdout.getReader();
        clientPid = Number(new TextDecoder().decode((await out.read()).value).trim());
        await client.exited;
      });
      const totals = health.totals as { retransmits: number };
      expect(totals.retransmits).toBeGreaterThan(0);
      const connections = health.connections as { local: string; remote: string; retransmits: number; pid: number | null; command: string | null }[];
      const mine = connections.find((c) => c.remote === "10.231.0.2:5201" && c.local.startsWith("10.231.0.1:"));
      expect(mine).toBeDefined();
      expect(mine!.retransmits).toBeGreaterThan(0);
      // The client's socket was named while the client held it (python's comm is "python3").
      expect(mine!.pid).toBe(clientPid);
      expect(mine!.command).toBe("python3");
      const byProcess = health.by_process as { pid: number | null; retransmits: number }[];
      expect(byProcess.find((p) => p.pid === clientPid)?.retransmits).toBeGreaterThan(0);
    } finally {
      serverProc.kill("SIGKILL");
      run(["ip", "netns", "del", NS_CLIENT], false);
      run(["ip", "netns", "del", NS_SERVER], false);
    }
  }, 120_000);

  testFaults("bad input: a clear tool error, and the server answers afterwards", async () => {
    const bad = await mcp.callTool({ name: "get_tcp_health", arguments: { remote: "not-an-ip" } });
    expect(bad.isError).toBe(true);
    expect(resultText(bad)).toContain('remote: "not-an-ip" is not an IP address');
    const long = await mcp.callTool({ name: "get_packet_drop_summary", arguments: { duration: 120 } });
    expect(long.isError).toBe(true);
    expect(resultText(long)).toContain("duration: 120 s is longer than an inline call may run");
    const port = await mcp.callTool({ name: "list_packet_drops", arguments: { port: 70000 } });
    expect(port.isError).toBe(true);
    expect(resultText(port)).toContain("port");
    expect(resultText(port)).toContain("70000");
    const ok = await call("get_tcp_health", { duration: 1 });
    expect(ok.done).toBe(true);
  }, 60_000);
});
