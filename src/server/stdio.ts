// MCP over stdio: stdout carries JSON-RPC only; logs go to stderr through the logger.
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { logger } from "../logger.ts";
import type { ToolDefinition } from "../tools/types.ts";
import { createMcpServer } from "./mcp.ts";

/** Serves until stdin closes (the client went away) and resolves then. */
export async function serveStdio(tools: readonly ToolDefinition[]): Promise<void> {
  const server = createMcpServer({ tools, via: "stdio" });
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    process.stdin.once("end", resolve);
    process.stdin.once("close", resolve);
    // A signal ends the session the same way, so serve can stop the probes before exiting.
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
    transport.onclose = resolve;
  });
  await server.connect(transport);
  logger.info(`ipcscope serving MCP on stdio with ${tools.length} tool(s)`);
  await closed;
  logger.debug("stdin closed; stopping");
  await server.close().catch(() => {});
}
