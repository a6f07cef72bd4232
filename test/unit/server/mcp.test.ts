// The MCP answer of a tool: an incomplete answer's note leads the text content, before the JSON.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { z } from "zod";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { completenessShape } from "../../../src/events/completeness.ts";
import { createMcpServer } from "../../../src/server/mcp.ts";
import { defineTool, READ_ONLY } from "../../../src/tools/types.ts";

const NOTE = "12,400 event lines were lost in this window; totals and details undercount.";
const answer = defineTool({
  name: "get_answer",
  title: "Answer",
  description: "Answers complete or not, as asked, with a note when not.",
  toolset: "events",
  input: { complete: z.boolean() },
  output: { ...completenessShape, n: z.number() },
  annotations: READ_ONLY,
  handler: async ({ complete }) => (complete ? { lost_events: 0, complete, n: 1 } : { lost_events: 12_400, complete, note: NOTE, n: 1 }),
});

const client = new Client({ name: "mcp-test", version: "0" });
beforeAll(async () => {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await createMcpServer({ tools: [answer as never], via: "stdio" }).connect(serverSide);
  await client.connect(clientSide);
});
afterAll(() => client.close());

test("an incomplete answer's note is its first text item, then the JSON", async () => {
  const result = await client.callTool({ name: "get_answer", arguments: { complete: false } });
  expect(result.content).toEqual([
    { type: "text", text: NOTE },
    { type: "text", text: JSON.stringify({ lost_events: 12_400, complete: false, note: NOTE, n: 1 }) },
  ]);
  expect(result.structuredContent).toMatchObject({ complete: false, note: NOTE });
});

test("a complete answer is the JSON alone", async () => {
  const result = await client.callTool({ name: "get_answer", arguments: { complete: true } });
  expect(result.content).toEqual([{ type: "text", text: JSON.stringify({ lost_events: 0, complete: true, n: 1 }) }]);
});
