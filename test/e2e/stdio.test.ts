// The compiled binary driven by the real MCP SDK client over stdio.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { release } from "node:os";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { ensureBinary } from "../helpers.ts";

describe("ipcscope serve over stdio", () => {
  const client = new Client({ name: "e2e-stdio", version: "0" });
  let stderr = "";

  beforeAll(async () => {
    const transport = new StdioClientTransport({ command: await ensureBinary(), args: ["serve", "--log-level", "debug"], stderr: "pipe" });
    transport.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    await client.connect(transport);
  });
  afterAll(() => client.close());

  test("initialize names the server, its version, instructions and logging capability", () => {
    expect(client.getServerVersion()).toMatchObject({ name: "ipcscope", version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    expect(client.getServerCapabilities()).toMatchObject({ tools: {}, logging: {} });
    expect(client.getInstructions()).toContain("get_system_info");
  });

  test("tools/list offers get_system_info with schemas and read-only annotations", async () => {
    const { tools } = await client.listTools();
    const info = tools.find((tool) => tool.name === "get_system_info");
    expect(info?.outputSchema?.properties).toHaveProperty("probes");
    expect(info?.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false, openWorldHint: false });
  });

  test("tools/call get_system_info describes this very host", async () => {
    const result = await client.callTool({ name: "get_system_info", arguments: {} });
    expect(result.isError).toBeFalsy();
    const info = result.structuredContent as { host: { kernel_release: string }; ipcscope: { pid: number }; checks: unknown[] };
    expect(info.host.kernel_release).toBe(release());
    expect(info.ipcscope.pid).toBeGreaterThan(1);
    expect(info.checks.length).toBeGreaterThan(5);
    // The text content carries the same JSON, for clients that ignore structuredContent.
    const text = (result.content as { type: string; text: string }[])[0]!.text;
    expect(JSON.parse(text)).toEqual(result.structuredContent);
  });

  test("a wrong argument type is a tool error naming the parameter and the value", async () => {
    const result = await client.callTool({ name: "get_system_info", arguments: { verify_probes: "yes" } });
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toContain('expected boolean, got \\"yes\\" at verify_probes');
  });

  test("an unknown tool is an error, and the server keeps serving", async () => {
    const result = await client.callTool({ name: "no_such_tool", arguments: {} }).catch((error: Error) => ({ isError: true, content: error.message }));
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toContain("no_such_tool");
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
  });

  test("log records reach the client as notifications/message at the level it asks for", async () => {
    const received: { level: string; logger?: string; data: unknown }[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
      received.push(notification.params);
    });
    await client.setLoggingLevel("debug");
    await client.callTool({ name: "get_system_info", arguments: {} });
    await Bun.sleep(100);
    expect(received).toContainEqual({ level: "debug", logger: "ipcscope", data: expect.stringMatching(/^get_system_info answered via stdio in \d+ ms$/) });
    // Above the level the client set, nothing more arrives.
    await client.setLoggingLevel("error");
    const before = received.length;
    await client.callTool({ name: "get_system_info", arguments: {} });
    await Bun.sleep(100);
    expect(received.length).toBe(before);
    // The same records go to stderr, never to stdout.
    expect(stderr).toContain("get_system_info answered via stdio");
  });
});
