// get_process_connection_snapshot and get_ipc_graph against workloads the test starts itself:
// a server and a client process on loopback (TCP v4 and v6, UDP, a Unix socket), through the
// compiled binary (MCP over stdio, and the CLI); and a listener in a test network namespace.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { Snapshot } from "../../src/snapshot/model.ts";
import type { IpcGraph } from "../../src/snapshot/graph.ts";
import { ensureBinary, firstLine, isRoot, ROOT, runBinary, testIf } from "../helpers.ts";

const BIN = join(ROOT, "test", "fixtures", "bin");

describe("snapshot and IPC graph of a known workload", () => {
  const unixPath = join(tmpdir(), `ipcscope-test-${process.pid}.sock`);
  let server: Bun.Subprocess<"pipe", "pipe", "inherit">;
  let clientProc: Bun.Subprocess<"pipe", "pipe", "inherit">;
  let ports: { tcp4: number; tcp6: number; udp: number; unix: string };
  const mcp = new Client({ name: "e2e-snapshot", version: "0" });

  beforeAll(async () => {
    server = Bun.spawn(["bun", join(BIN, "workload-server.ts"), unixPath], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    ports = JSON.parse(await firstLine(server.stdout));
    clientProc = Bun.spawn(["bun", join(BIN, "workload-client.ts"), String(ports.tcp4), unixPath], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    expect(await firstLine(clientProc.stdout)).toBe("connected");
    await mcp.connect(new StdioClientTransport({ command: await ensureBinary(), args: ["serve"] }));
  });

  afterAll(async () => {
    await mcp.close();
    for (const child of [clientProc, server]) {
      child?.stdin.end();
      await child?.exited;
    }
    rmSync(unixPath, { force: true });
  });

  async function snapshot(args: Record<string, unknown>): Promise<Snapshot> {
    const result = await mcp.callTool({ name: "get_process_connection_snapshot", arguments: args });
    expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    return result.structuredContent as Snapshot;
  }

  test("the server process shows its listeners, with user, command line and direction", async () => {
    const answer = await snapshot({ pid: server.pid, include_unix: true });
    expect(answer.process_connections).toHaveLength(1);
    const entry = answer.process_connections[0]!;
    expect(entry).toMatchObject({ pid: server.pid, ppid: process.pid, user: "root", uid: 0 });
    expect(entry.command_line).toContain("workload-server.ts");
    const find = (proto: string, local: string) => entry.connections.find((c) => c.transport_protocol === proto && c.local_address === local);
    expect(find("TCP", `127.0.0.1:${ports.tcp4}`)).toMatchObject({ status: "LISTEN", direction: "listen" });
    expect(find("TCP", `[::1]:${ports.tcp6}`)).toMatchObject({ status: "LISTEN", direction: "listen", family: "ipv6" });
    expect(find("UDP", `127.0.0.1:${ports.udp}`)).toMatchObject({ status: "UNCONN", direction: "listen" });
    expect(find("UNIX", unixPath)).toMatchObject({ status: "LISTEN", direction: "listen" });
    // The accepted connection is inbound on the listening port.
    expect(entry.connections.find((c) => c.transport_protocol === "TCP" && c.status === "ESTAB")).toMatchObject({
      direction: "inbound",
      local_port: ports.tcp4,
      loopback: true,
    });
  });

  test("the client's connection is outbound to the server's port, and filters narrow the answer", async () => {
    const answer = await snapshot({ port: ports.tcp4, state: "ESTABLISHED" });
    const client = answer.process_connections.find((entry) => entry.pid === clientProc.pid)!;
    expect(client.connections).toHaveLength(1);
    expect(client.connections[0]).toMatchObject({ direction: "outbound", remote_port: ports.tcp4, remote_address: `127.0.0.1:${ports.tcp4}`, status: "ESTAB" });
    expect(answer.process_connections.map((entry) => entry.pid).sort()).toEqual([server.pid, clientProc.pid].sort());
    expect(answer.truncated).toBe(false);
    expect(answer.totals.sockets).toBeGreaterThanOrEqual(answer.matched.sockets);

    const listening = await snapshot({ command: "workload-server", listening: true });
    expect(listening.process_connections.flatMap((entry) => entry.connections).every((c) => c.direction === "listen")).toBe(true);
    const none = await snapshot({ remote_cidr: "10.0.0.0/8", pid: clientProc.pid });
    expect(none.process_connections).toEqual([]);
  });

  test("the limit cuts the answer and says so with a hint", async () => {
    const answer = await snapshot({ limit: 1 });
    expect(answer.returned.sockets).toBe(1);
    expect(answer.truncated).toBe(answer.matched.sockets > 1);
    if (answer.truncated) expect(answer.hint).toContain("narrow with");
  });

  test("bad filters are refused with the parameter and the value", async () => {
    const result = await mcp.callTool({ name: "get_process_connection_snapshot", arguments: { remote_cidr: "10.0.0.0/33" } });
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toContain('not a CIDR block such as 10.0.0.0/8 or 2001:db8::/32, got \\"10.0.0.0/33\\"');
    const port = await mcp.callTool({ name: "get_process_connection_snapshot", arguments: { port: 70000 } });
    expect(JSON.stringify(port.content)).toContain("must be at most 65535, got 70000");
  });

  test("the IPC graph links client to server over TCP and over the Unix socket", async () => {
    const result = await mcp.callTool({ name: "get_ipc_graph", arguments: { pid: server.pid, mermaid: true } });
    const graph = result.structuredContent as IpcGraph;
    const from = `p${clientProc.pid}`;
    const to = `p${server.pid}`;
    expect(graph.edges).toContainEqual(expect.objectContaining({ from, to, transport: "tcp", endpoint: String(ports.tcp4), count: 1 }));
    expect(graph.edges).toContainEqual(expect.objectContaining({ from, to, transport: "unix", endpoint: unixPath, count: 1 }));
    // (Bun gives children socketpairs for stdio, so this test process is linked to them too.)
    expect(graph.nodes.map((node) => node.pid)).toEqual(expect.arrayContaining([server.pid, clientProc.pid]));
    expect(graph.edges.every((edge) => edge.from === to || edge.to === to)).toBe(true);
    expect(graph.mermaid).toContain(`${from} -->|"tcp ${ports.tcp4}`);
  });

  test("the CLI prints the same as a table and as JSON", async () => {
    const text = await runBinary(["snapshot", "--pid", String(server.pid)]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`${server.pid}\\s+bun\\s+root\\s+TCP\\s+127\\.0\\.0\\.1:${ports.tcp4}\\s+0\\.0\\.0\\.0:\\*\\s+LISTEN\\s+listen`));
    const json = await runBinary(["snapshot", "--json", "--pid", String(server.pid), "--include-unix"]);
    expect((JSON.parse(json.stdout) as Snapshot).process_connections[0]!.connections.some((c) => c.local_address === unixPath)).toBe(true);
    const bad = await runBinary(["snapshot", "--port", "http"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('port: expected number, got "http"');
    const graph = await runBinary(["graph", "--pid", String(clientProc.pid)]);
    expect(graph.stdout).toContain(`(${clientProc.pid}) --tcp ${ports.tcp4}`);
  });
});

describe("sockets in another network namespace", () => {
  const name = `ipcscope-e2e-${process.pid}`;
  const unixPath = join(tmpdir(), `ipcscope-netns-${process.pid}.sock`);
  let child: Bun.Subprocess<"pipe", "pipe", "inherit"> | undefined;
  let ports: { tcp4: number };

  afterAll(async () => {
    child?.stdin.end();
    await child?.exited;
    Bun.spawnSync(["ip", "netns", "del", name]);
    rmSync(unixPath, { force: true });
  });

  testIf(isRoot && Bun.which("ip") !== null, "root and iproute2's ip")("a listener inside `ip netns add` shows with its own namespace", async () => {
    expect(Bun.spawnSync(["ip", "netns", "add", name]).exitCode).toBe(0);
    expect(Bun.spawnSync(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"]).exitCode).toBe(0);
    child = Bun.spawn(["ip", "netns", "exec", name, "bun", join(BIN, "workload-server.ts"), unixPath], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    ports = JSON.parse(await firstLine(child.stdout));
    const hostNetns = Number(/\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/net"))![1]);
    const { stdout, code } = await runBinary(["snapshot", "--json", "--pid", String(child.pid), "--listening"]);
    expect(code).toBe(0);
    const answer = JSON.parse(stdout) as Snapshot;
    expect(answer.totals.namespaces).toBeGreaterThanOrEqual(2);
    const entry = answer.process_connections[0]!;
    expect(entry.pid).toBe(child.pid);
    expect(entry.netns).not.toBe(hostNetns);
    const listener = entry.connections.find((c) => c.local_address === `127.0.0.1:${ports.tcp4}`)!;
    expect(listener).toMatchObject({ status: "LISTEN", netns: entry.netns });
    // The host's own ss does not see it: it came from inside the namespace.
    expect(Bun.spawnSync(["ss", "-tlnH", `sport = :${ports.tcp4}`]).stdout.toString().trim()).toBe("");
  }, 30_000);
});
