// In stdio mode stdout is the MCP channel: with the most verbose logging, and with probes run as
// children, not one byte on stdout may be anything but a JSON-RPC message.
import { expect, test } from "bun:test";
import { ensureBinary, hasBpftrace, isRoot } from "../helpers.ts";

test("with trace logging on, stdout carries nothing but JSON-RPC and the logs go to stderr", async () => {
  const proc = Bun.spawn([await ensureBinary(), "serve", "--log-level", "trace"], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const send = (message: unknown) => proc.stdin.write(`${typeof message === "string" ? message : JSON.stringify(message)}\n`);
  send({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } } });
  send({ jsonrpc: "2.0", method: "notifications/initialized" });
  send({ jsonrpc: "2.0", id: 2, method: "logging/setLevel", params: { level: "debug" } });
  send({ jsonrpc: "2.0", id: 3, method: "tools/list" });
  // verify_probes runs bpftrace as a child: its output must not leak onto our stdout either.
  send({ jsonrpc: "2.0", id: 4, method: "tools/call", params: { name: "get_system_info", arguments: { verify_probes: isRoot && hasBpftrace } } });
  send({ jsonrpc: "2.0", id: 5, method: "no/such/method" });
  send("this is not json");
  send({ jsonrpc: "2.0", id: 6, method: "ping" });
  await proc.stdin.flush();

  const decoder = new TextDecoder();
  let stdout = "";
  const reader = proc.stdout.getReader();
  const deadline = Date.now() + 30_000;
  // Answers arrive in completion order, not request order: wait for all of them.
  const answered = () => [1, 2, 3, 4, 5, 6].every((id) => new RegExp(`"id":${id}[,}]`).test(stdout));
  while (!answered() && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    stdout += decoder.decode(value, { stream: true });
  }
  proc.stdin.end();
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);

  const lines = stdout.split("\n").filter((line) => line !== "");
  const messages = lines.map((line) => {
    let message: { jsonrpc?: string };
    try {
      message = JSON.parse(line);
    } catch {
      throw new Error(`stdout line is not JSON: ${line.slice(0, 200)}`);
    }
    expect(message.jsonrpc).toBe("2.0");
    return message as { id?: number; result?: unknown; error?: { code: number }; method?: string };
  });
  const byId = (id: number) => messages.find((message) => message.id === id);
  for (const id of [1, 2, 3, 4, 6]) expect(byId(id)?.result).toBeDefined();
  expect(byId(5)?.error?.code).toBe(-32601);
  expect(messages.some((message) => message.method === "notifications/message")).toBe(true);
  expect(stderr).toMatch(/get_system_info answered via stdio/);
  expect(code).toBe(0);
});
