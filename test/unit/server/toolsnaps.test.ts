// The public surface: each tool's name, description, schemas and annotations as a client sees them
// in tools/list, compared with test/__toolsnaps__/<tool>.json. An intended change is recorded with
// UPDATE_TOOLSNAPS=1 bun test test/unit/server/toolsnaps.test.ts, and reviewed in the diff.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { createMcpServer } from "../../../src/server/mcp.ts";
import { ALL_TOOLS } from "../../../src/tools/index.ts";
import { IN_CI, ROOT } from "../../helpers.ts";

const SNAP_DIR = join(ROOT, "test", "__toolsnaps__");
const update = process.env.UPDATE_TOOLSNAPS === "1" && !IN_CI;
let listed: Tool[] = [];
const client = new Client({ name: "toolsnaps", version: "0" });

beforeAll(async () => {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await createMcpServer({ tools: ALL_TOOLS, via: "stdio" }).connect(serverSide);
  await client.connect(clientSide);
  listed = (await client.listTools()).tools;
});
afterAll(() => client.close());

test("every registered tool is listed", () => {
  expect(listed.map((tool) => tool.name).sort()).toEqual(ALL_TOOLS.map((tool) => tool.name).sort());
});

test("no snapshot is left for a tool that no longer exists", () => {
  const snaps = readdirSync(SNAP_DIR).filter((file) => file.endsWith(".json")).map((file) => file.slice(0, -5));
  expect(snaps.sort()).toEqual(ALL_TOOLS.map((tool) => tool.name).sort());
});

for (const tool of ALL_TOOLS) {
  test(`the schema of ${tool.name} matches its snapshot`, () => {
    const seen = listed.find((entry) => entry.name === tool.name);
    expect(seen).toBeDefined();
    expect(seen!.outputSchema).toBeDefined();
    const text = `${JSON.stringify(seen, null, 2)}\n`;
    const file = join(SNAP_DIR, `${tool.name}.json`);
    if (update) writeFileSync(file, text);
    if (!existsSync(file)) throw new Error(`no snapshot ${file}: record it with UPDATE_TOOLSNAPS=1 bun test ${import.meta.path}`);
    expect(text).toBe(readFileSync(file, "utf8"));
  });
}
