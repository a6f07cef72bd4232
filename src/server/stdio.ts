// MCP over stdio: stdout carries JSON-RPC only; logs go to stderr through the logger.
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { cancelAllCalls, runningCalls } from "../limits.ts";
import { logger } from "../logger.ts";
import type { ToolDefinition } from "../tools/types.ts";
import { createMcpServer } from "./mcp.ts";

/** How long a stop waits for the cancelled calls to send their answers. */
const STOP_GRACE_MS = 5_000;

/** Serves until stdin closes (the client went away) or `stop` resolves (a signal), and resolves then. */
export async function serveStdio(tools: readonly ToolDefinition[], stop: Promise<unknown>): Promise<void> {
  const server = createMcpServer({ tools, via: "stdio" });
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    process.stdin.once("end", resolve);
    process.stdin.once("close", resolve);
    // A signal ends the session the same way, so serve can stop the probes before exiting.
    void stop.then(() => resolve());
    transport.onclose = resolve;
  });
  await server.connect(transport);
  logger.info(`ipcscope serving MCP on stdio with ${tools.length} tool(s)`);
  await closed;
  logger.debug("stdin closed or stop requested; stopping");
  // Running calls are cancelled and may write their (partial) answers before the transport closes.
  cancelAllCalls();
  const end = Date.now() + STOP_GRACE_MS;
  while (runningCalls() > 0 && Date.now() < end) await Bun.sleep(20);
  await server.close().catch(() => {});
}
