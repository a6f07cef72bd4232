// The compiled binary's MCP prompts and resources over stdio with the SDK client, against listeners
// this test opens itself: the prompts and generate_ipc_analysis_prompt name them within the budget,
// and the resources read back what the tools answer.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ensureBinary, firstLine, ROOT } from "../helpers.ts";

type Socket = { transport_protocol: string; local_address: string; remote_address: string; status: string; inode: number | null };
const key = (s: Socket) => `${s.transport_protocol} ${s.local_address} ${s.remote_address} ${s.status} ${s.inode}`;
const textOf = (content: unknown) => (content as { type: string; text: string }).text;

describe("MCP prompts and resources of ipcscope serve", () => {
  const client = new Client({ name: "e2e-prompts", version: "0" });
  let stderr = "";
  // A TCP listener in this test process, and a child workload whose pid the process resource reads.
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  let child: Bun.Subprocess<"pipe", "pipe", "inherit">;
  let ports: { tcp4: number; tcp6: number; udp: number; unix: string };

  beforeAll(async () => {
    const unixPath = join(tmpdir(), `ipcscope-prompts-${process.pid}.sock`);
    child = Bun.spawn(["bun", join(ROOT, "test", "fixtures", "bin", "workload-server.ts"), unixPath], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    ports = JSON.parse(await firstLine(child.stdout));
    const transport = new StdioClientTransport({ command: await ensureBinary(), args: ["serve", "--events-source", "ss-poll"], stderr: "pipe" });
    transport.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    await client.connect(transport);
  }, 120_000);
  afterAll(async () => {
    await client.close();
    listener.stop(true);
    child.stdin.end();
    await child.exited;
  });

  test("initialize announces prompts and resources, and prompts/list has the three prompts with their arguments", async () => {
    expect(client.getServerCapabilities()).toMatchObject({ prompts: {}, resources: {} });
    const { prompts } = await client.listPrompts();
    const byName = Object.fromEntries(prompts.map((p) => [p.name, p]));
    expect(Object.keys(byName).sort()).toEqual(["connection_troubleshooting", "ipc_analysis", "security_review"]);
    expect(byName.connection_troubleshooting!.arguments!.map((a) => a.name).sort()).toEqual(["max_tokens", "port", "process"]);
    expect(byName.ipc_analysis!.arguments!.map((a) => a.name).sort()).toEqual(["focus", "max_tokens"]);
  });

  test("prompts/get ipc_analysis names the TCP listener this test opened", async () => {
    const result = await client.getPrompt({ name: "ipc_analysis", arguments: {} });
    expect(result.messages).toHaveLength(1);
    expect(result.messages[0]!.role).toBe("user");
    const text = textOf(result.messages[0]!.content);
    expect(text).toContain("# Task (analysis)");
    expect(text).toContain(`TCP 127.0.0.1:${listener.port} `);
    expect(text).toContain("## Connection events");
    const tokens = Number(/\(~(\d+) tokens, estimated as characters\/4, budget 4000/.exec(text)?.[1]);
    expect(tokens).toBe(Math.ceil(text.length / 4));
    expect(tokens).toBeLessThanOrEqual(4000);
  });

  test("prompts/get security_review marks the loopback listener and asks about exposure", async () => {
    const text = textOf((await client.getPrompt({ name: "security_review", arguments: {} })).messages[0]!.content);
    expect(text).toContain("unexpected listeners");
    expect(text).toMatch(new RegExp(`TCP 127\\.0\\.0\\.1:${listener.port} [^\\n]*loopback only`));
  });

  test("connection_troubleshooting with a port focuses on it, before everything else", async () => {
    const result = await client.getPrompt({ name: "connection_troubleshooting", arguments: { port: String(ports.tcp4) } });
    const text = textOf(result.messages[0]!.content);
    const focus = text.indexOf(`## Focus: port ${ports.tcp4}`);
    expect(focus).toBeGreaterThan(0);
    expect(focus).toBeLessThan(text.indexOf("## Listening sockets"));
    const focusSection = text.slice(focus, text.indexOf("\n## ", focus + 1));
    expect(focusSection).toContain(`(${child.pid}) user`);
    expect(focusSection).toContain(`TCP 127.0.0.1:${ports.tcp4} -> `);
    // The listener of this test is not on that port: it is not in the focus.
    expect(focusSection).not.toContain(`127.0.0.1:${listener.port}`);
  });

  test("connection_troubleshooting refuses a port that is not a number", async () => {
    await expect(client.getPrompt({ name: "connection_troubleshooting", arguments: { port: "http" } })).rejects.toThrow('port must be 0-65535, got "http"');
  });

  test("generate_ipc_analysis_prompt stays within max_tokens and names the listener", async () => {
    for (const max_tokens of [4000, 600]) {
      const result = await client.callTool({ name: "generate_ipc_analysis_prompt", arguments: { max_tokens, focus: `port:${listener.port}` } });
      expect(result.isError).toBeFalsy();
      const answer = result.structuredContent as { prompt: string; estimated_tokens: number; budget_tokens: number; truncated: boolean; sections: { name: string; status: string }[] };
      expect(answer.budget_tokens).toBe(max_tokens);
      expect(answer.estimated_tokens).toBe(Math.ceil(answer.prompt.length / 4));
      expect(answer.estimated_tokens).toBeLessThanOrEqual(max_tokens);
      expect(answer.prompt).toContain(`127.0.0.1:${listener.port}`);
      expect(answer.sections[0]).toMatchObject({ name: "focus", status: "complete" });
      if (max_tokens === 600) {
        expect(answer.truncated).toBe(true);
        expect(answer.sections.some((s) => s.status !== "complete")).toBe(true);
      }
    }
    const bad = await client.callTool({ name: "generate_ipc_analysis_prompt", arguments: { max_tokens: 10 } });
    expect(bad.isError).toBe(true);
  });

  test("resources/list and resources/templates/list offer the views, the probes and the process template", async () => {
    const { resources } = await client.listResources();
    const uris = resources.map((r) => r.uri);
    for (const uri of ["ipcscope://snapshot", "ipcscope://ipc-graph", "ipcscope://events/recent", "ipcscope://system", "ipcscope://probes", "ipcscope://probes/trace_connections"]) {
      expect(uris).toContain(uri);
    }
    expect(resources.find((r) => r.uri === "ipcscope://snapshot")!.mimeType).toBe("application/json");
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate).sort()).toEqual(["ipcscope://probes/{name}", "ipcscope://process/{pid}"]);
  });

  test("the events resource and the prompt's events section say how complete the events are (ss polling: not)", async () => {
    const { contents } = await client.readResource({ uri: "ipcscope://events/recent" });
    const recent = JSON.parse(textOf(contents[0])) as { source: string; lost_events: number; complete: boolean; note?: string };
    expect(recent).toMatchObject({ source: "ss-poll", lost_events: 0, complete: false });
    expect(recent.note).toContain("events come from ss polling");
    const text = textOf((await client.getPrompt({ name: "ipc_analysis", arguments: {} })).messages[0]!.content);
    expect(text).toContain("Completeness: lost_events 0, complete false: events come from ss polling, which samples every");
  });

  test("ipcscope://snapshot is the snapshot tool's JSON and holds this test's listener", async () => {
    const { contents } = await client.readResource({ uri: "ipcscope://snapshot" });
    expect(contents[0]).toMatchObject({ uri: "ipcscope://snapshot", mimeType: "application/json" });
    const snapshot = JSON.parse(textOf(contents[0])) as { source: string; process_connections: { pid: number; connections: Socket[] }[] };
    const mine = snapshot.process_connections.find((p) => p.pid === process.pid);
    expect(mine?.connections.map((c) => c.local_address)).toContain(`127.0.0.1:${listener.port}`);
  });

  test("ipcscope://process/{pid} of the child has the same sockets as the snapshot tool for that pid", async () => {
    const { contents } = await client.readResource({ uri: `ipcscope://process/${child.pid}` });
    expect(contents[0]!.mimeType).toBe("application/json");
    const resource = JSON.parse(textOf(contents[0])) as { pid: number; command_line: string; user: string; sockets: Socket[]; recent_events: { source: string } | null };
    expect(resource.pid).toBe(child.pid);
    expect(resource.command_line).toContain("workload-server.ts");
    expect(resource.user).toEqual(process.geteuid?.() === 0 ? "root" : expect.any(String));
    expect(resource.recent_events?.source).toBe("ss-poll");

    const tool = await client.callTool({ name: "get_process_connection_snapshot", arguments: { pid: child.pid, include_unix: true } });
    const entry = (tool.structuredContent as { process_connections: { pid: number; connections: Socket[] }[] }).process_connections.find((p) => p.pid === child.pid)!;
    expect(resource.sockets.map(key).sort()).toEqual(entry.connections.map(key).sort());
    const local = resource.sockets.map((s) => s.local_address);
    expect(local).toEqual(expect.arrayContaining([`127.0.0.1:${ports.tcp4}`, `[::1]:${ports.tcp6}`, `127.0.0.1:${ports.udp}`, ports.unix]));
  });

  test("ipcscope://probes lists the catalogue and ipcscope://probes/{name} returns the probe's source", async () => {
    const catalogue = JSON.parse(textOf((await client.readResource({ uri: "ipcscope://probes" })).contents[0])) as { probes: { name: string; uri: string; source?: string }[] };
    expect(catalogue.probes.map((p) => p.name)).toContain("trace_connections");
    expect(catalogue.probes[0]!.source).toBeUndefined();
    const { contents } = await client.readResource({ uri: "ipcscope://probes/trace_connections" });
    expect(contents[0]!.mimeType).toBe("text/plain");
    expect(textOf(contents[0])).toBe(await Bun.file(join(ROOT, "probes", "trace_connections.bt")).text());
    await expect(client.readResource({ uri: "ipcscope://probes/no_such_probe" })).rejects.toThrow('no probe "no_such_probe"');
  });

  test("a bad pid is a clear error, and the server keeps serving", async () => {
    await expect(client.readResource({ uri: "ipcscope://process/abc" })).rejects.toThrow('pid must be a positive integer, got "abc"');
    await expect(client.readResource({ uri: "ipcscope://process/999999999" })).rejects.toThrow("no process with pid 999999999");
    expect((await client.readResource({ uri: "ipcscope://system" })).contents[0]!.mimeType).toBe("application/json");
    expect(stderr).not.toContain("failed:");
  });
});
