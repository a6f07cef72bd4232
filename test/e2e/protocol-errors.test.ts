// What the compiled binary answers to what is not a proper request, over stdio and HTTP alike:
// JSON-RPC 2.0's -32700/-32600/-32601, the SDK's error for an unknown tool, and tool errors that
// name the argument and the value. After each kind of mistake a normal call still works.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type HttpServer, resultText, startHttpServer } from "../helpers.ts";
import { INITIALIZE, INITIALIZED, type Message, openSession, postMcp, type RawStdio, startRawStdio } from "../raw-mcp.ts";

interface Case {
  name: string;
  /** Sent as one line on stdio, as the body on HTTP. */
  body: string;
  code: number;
  id: string | number | null;
  /** A part of the error message (both transports). */
  says?: string;
}

const CASES: Case[] = [
  { name: "text that is not JSON", body: '{"jsonrpc": "2.0", "id": 1, "method": "ping"', code: -32700, id: null },
  { name: "a message without jsonrpc", body: '{"id": 2, "method": "ping"}', code: -32600, id: 2, says: 'jsonrpc must be "2.0", got nothing' },
  { name: "a wrong JSON-RPC version", body: '{"jsonrpc": "1.0", "id": 3, "method": "ping"}', code: -32600, id: 3, says: 'jsonrpc must be "2.0", got "1.0"' },
  { name: "a method that is not a string", body: '{"jsonrpc": "2.0", "id": "four", "method": 4}', code: -32600, id: "four", says: "method must be a string, got 4" },
  { name: "params that are not an object", body: '{"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": [1, 2]}', code: -32600, id: 5, says: "params must be an object, got [1,2]" },
  { name: "an id that is neither string nor integer", body: '{"jsonrpc": "2.0", "id": 6.5, "method": "ping"}', code: -32600, id: null, says: "id must be a string or an integer, got 6.5" },
  { name: "a member JSON-RPC does not have", body: '{"jsonrpc": "2.0", "id": 7, "method": "ping", "extra": true}', code: -32600, id: 7, says: "unknown member(s) extra" },
  { name: "a bare number", body: "42", code: -32600, id: null, says: "expected a JSON object, got 42" },
  { name: "null", body: "null", code: -32600, id: null },
  { name: "a malformed notification", body: '{"jsonrpc": "2.0", "method": "notifications/initialized", "params": "x"}', code: -32600, id: null, says: "params must be an object" },
  { name: "a message nested 100k levels deep", body: `{"jsonrpc": "2.0", "id": 8, "result": {"a": ${"[".repeat(100_000)}${"]".repeat(100_000)}}}`, code: -32600, id: null, says: "nested deeper than 1000 levels" },
  { name: "an empty batch", body: "[]", code: -32600, id: null, says: "an empty batch" },
  { name: "a batch of garbage", body: '[1, "two", {"three": 3}]', code: -32600, id: null },
];

/** Wrong argument types: the tool error names the argument and shows the value received. */
const BAD_ARGUMENTS: { tool: string; args: Record<string, unknown>; says: string[] }[] = [
  { tool: "get_system_info", args: { verify_probes: "yes" }, says: ["verify_probes", '"yes"'] },
  { tool: "get_process_connection_snapshot", args: { pid: "abc" }, says: ["pid", '"abc"'] },
  { tool: "get_process_connection_snapshot", args: { port: 70000 }, says: ["port", "70000"] },
  { tool: "list_connections", args: { limit: -5 }, says: ["limit", "-5"] },
  { tool: "get_tcp_health", args: { duration: [1] }, says: ["duration", "[1]"] },
  { tool: "trace_syscall_errors", args: { command: { name: "x" } }, says: ["command", '{"name":"x"}'] },
  { tool: "get_live_network_events", args: { type: "bogus" }, says: ["type", '"bogus"'] },
  { tool: "analyze_patterns", args: { since: 1e21 }, says: ["since", "1e+21"] },
];

const call = (id: number, name: string, args: unknown) => JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } });
/** Valid JSON-RPC, but params the method does not take: -32602 naming the field (the SDK alone says -32603). */
const INVALID_PARAMS = [
  { body: '{"jsonrpc": "2.0", "id": 40, "method": "tools/call", "params": {"arguments": {}}}', id: 40, message: "Invalid params: params.name: expected string, got nothing" },
  { body: '{"jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": {"name": "get_system_info", "arguments": 5}}', id: 41, message: "Invalid params: params.arguments: expected record, got 5" },
  { body: '{"jsonrpc": "2.0", "id": 42, "method": "resources/read", "params": {"uri": 5}}', id: 42, message: "Invalid params: params.uri: expected string, got 5" },
];
const UNKNOWN_METHOD = { body: '{"jsonrpc": "2.0", "id": 90, "method": "no/such_method"}', id: 90 };
const UNKNOWN_TOOL = { body: call(91, "no_such_tool", {}), id: 91 };
const NORMAL_CALL = (id: number) => call(id, "get_system_info", {});

function expectNormalAnswer(answer: Message, id: number): void {
  expect(answer.id).toBe(id);
  expect(answer.error).toBeUndefined();
  expect(answer.result.isError).toBeFalsy();
  expect(answer.result.structuredContent.host.kernel_release).toBeString();
}

describe("over stdio", () => {
  let server: RawStdio;

  beforeAll(async () => {
    server = await startRawStdio(["--no-monitor"]);
    await server.write(`${JSON.stringify(INITIALIZE)}\n`);
    expect((await server.next()).result.serverInfo.name).toBe("ipcscope");
    await server.write(`${JSON.stringify(INITIALIZED)}\n`);
  });
  afterAll(async () => {
    if (server.proc.exitCode === null) await server.stop();
  });

  for (const c of CASES) {
    test(`${c.name} is answered ${c.code} with id ${JSON.stringify(c.id)}`, async () => {
      await server.write(`${c.body}\n`);
      const answer = await server.next();
      expect(answer).toMatchObject({ jsonrpc: "2.0", id: c.id, error: { code: c.code } });
      if (c.says) expect(answer.error!.message).toContain(c.says);
    });
  }

  test("a batch is refused as a whole: MCP sends one message per line", async () => {
    await server.write(`[${NORMAL_CALL(10)}]\n`);
    expect((await server.next()).error).toEqual({ code: -32600, message: "Invalid Request: batches are not supported over stdio; send one message per line" });
  });

  test("params a method does not take are -32602 Invalid params naming the field", async () => {
    for (const c of INVALID_PARAMS) {
      await server.write(`${c.body}\n`);
      expect(await server.next()).toEqual({ jsonrpc: "2.0", id: c.id, error: { code: -32602, message: c.message } });
    }
  });

  test("an unknown method is -32601 Method not found", async () => {
    await server.write(`${UNKNOWN_METHOD.body}\n`);
    expect(await server.next()).toMatchObject({ id: UNKNOWN_METHOD.id, error: { code: -32601, message: "Method not found" } });
  });

  test("an unknown tool is the SDK's tool error naming it", async () => {
    await server.write(`${UNKNOWN_TOOL.body}\n`);
    const answer = await server.next();
    expect(answer.id).toBe(UNKNOWN_TOOL.id);
    expect(answer.result.isError).toBe(true);
    expect(resultText(answer.result)).toBe("MCP error -32602: Tool no_such_tool not found");
  });

  for (const [index, bad] of BAD_ARGUMENTS.entries()) {
    test(`${bad.tool} ${JSON.stringify(bad.args)} is a tool error naming ${bad.says.join(" and ")}`, async () => {
      await server.write(`${call(20 + index, bad.tool, bad.args)}\n`);
      const answer = await server.next();
      expect(answer.id).toBe(20 + index);
      expect(answer.result.isError).toBe(true);
      for (const part of bad.says) expect(resultText(answer.result)).toContain(part);
      expect(resultText(answer.result)).not.toMatch(/\n\s+at /);
    });
  }

  test("blank lines are skipped, and a line over 1 MiB is answered and skipped, not the end of the session", async () => {
    await server.write("\n\r\n   \n");
    await server.write(`{"jsonrpc": "2.0", "id": 30, "method": "ping", "params": {"pad": "${"x".repeat(1024 * 1024 + 10)}"}}\n`);
    expect((await server.next()).error).toMatchObject({ code: -32000, message: expect.stringContaining("exceeds the limit of 1048576 bytes") });
    await server.write(`{"jsonrpc": "2.0", "id": 31, "method": "ping"}\n`);
    expect(await server.next()).toMatchObject({ id: 31, result: {} });
  });

  test("after all of that a normal call works, and stdout carried JSON-RPC only", async () => {
    await server.write(`${NORMAL_CALL(99)}\n`);
    expectNormalAnswer(await server.next(), 99);
    expect(server.notJson).toEqual([]);
    expect(server.proc.exitCode).toBeNull();
  });
});

describe("over HTTP", () => {
  let server: HttpServer;
  let session: string;

  beforeAll(async () => {
    server = await startHttpServer(["--no-monitor"]);
    session = await openSession(server.url);
  });
  afterAll(async () => {
    if (server.proc.exitCode === null) await server.stop();
  });

  for (const c of CASES) {
    test(`${c.name} is answered 400 and ${c.code} with id ${JSON.stringify(c.id)}, with and without a session`, async () => {
      for (const id of [session, undefined]) {
        const answer = await postMcp(server.url, c.body, id);
        expect(answer.status).toBe(400);
        expect(answer.messages).toEqual([{ jsonrpc: "2.0", id: c.id, error: { code: c.code, message: expect.any(String) } }]);
        if (c.says) expect(answer.messages[0]!.error!.message).toContain(c.says);
      }
    });
  }

  test("a batch names the item that is wrong; a good batch is answered item by item", async () => {
    const bad = await postMcp(server.url, `[${NORMAL_CALL(10)}, {"jsonrpc": "2.0", "id": 11, "method": 3}]`, session);
    expect(bad.messages[0]!.error!.message).toBe("Invalid Request: method must be a string, got 3 (batch item 1)");
    const good = await postMcp(server.url, `[${NORMAL_CALL(12)}, {"jsonrpc": "2.0", "id": 13, "method": "ping"}]`, session);
    expect(good.status).toBe(200);
    expect(good.messages.map((message) => message.id).sort()).toEqual([12, 13]);
  });

  test("params a method does not take are -32602 Invalid params naming the field", async () => {
    for (const c of INVALID_PARAMS) {
      expect((await postMcp(server.url, c.body, session)).messages).toEqual([{ jsonrpc: "2.0", id: c.id, error: { code: -32602, message: c.message } }]);
    }
  });

  test("an unknown method is -32601 Method not found", async () => {
    const answer = await postMcp(server.url, UNKNOWN_METHOD.body, session);
    expect(answer.messages).toEqual([{ jsonrpc: "2.0", id: UNKNOWN_METHOD.id, error: { code: -32601, message: "Method not found" } }]);
  });

  test("an unknown tool is the SDK's tool error naming it", async () => {
    const [answer] = (await postMcp(server.url, UNKNOWN_TOOL.body, session)).messages;
    expect(answer!.result.isError).toBe(true);
    expect(resultText(answer!.result)).toBe("MCP error -32602: Tool no_such_tool not found");
  });

  for (const bad of BAD_ARGUMENTS) {
    test(`${bad.tool} ${JSON.stringify(bad.args)} is a tool error naming ${bad.says.join(" and ")}, over MCP and REST`, async () => {
      const [answer] = (await postMcp(server.url, call(20, bad.tool, bad.args), session)).messages;
      expect(answer!.result.isError).toBe(true);
      const rest = await fetch(new URL(`/${bad.tool}`, server.url), { method: "POST", body: JSON.stringify(bad.args) });
      expect(rest.status).toBe(400);
      const restError = ((await rest.json()) as { error: string }).error;
      for (const part of bad.says) {
        expect(resultText(answer!.result)).toContain(part);
        expect(restError).toContain(part);
      }
    });
  }

  test("a JSON-RPC error body with an unknown id is accepted and ignored (responses are never answered)", async () => {
    const answer = await postMcp(server.url, '{"jsonrpc": "2.0", "id": 77, "error": {"code": 1, "message": "x"}}', session);
    expect(answer.status).toBe(202);
  });

  test("after all of that a normal call works in the same session", async () => {
    const [answer] = (await postMcp(server.url, NORMAL_CALL(99), session)).messages;
    expectNormalAnswer(answer!, 99);
    expect(server.proc.exitCode).toBeNull();
  });
});
