// MCP over stdio: stdout carries JSON-RPC only; logs go to stderr through the logger.
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { cancelAllCalls, drained, runningCalls } from "../limits.ts";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { logger } from "../logger.ts";
import type { ToolDefinition } from "../tools/types.ts";
import { checkLine, errorResponse } from "./jsonrpc.ts";
import { createMcpServer } from "./mcp.ts";

/**
 * A line longer than this is skipped and answered: the HTTP body limit (MAX_BODY_BYTES, 413 there),
 * not imported so that stdio does not load the HTTP server's modules.
 */
export const MAX_LINE_BYTES = 1024 * 1024;

export const TOO_LONG = Symbol("too long");

/** Splits stdin into lines; keeps at most maxBytes of a line, and reports a longer one once as TOO_LONG. */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): (string | typeof TOO_LONG)[] {
    const lines: (string | typeof TOO_LONG)[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.skipping) this.skipping = false;
      else if (this.size + piece.length > this.maxBytes) lines.push(TOO_LONG);
      else lines.push(Buffer.concat([...this.parts, piece]).toString("utf8").replace(/\r$/, ""));
      this.parts = [];
      this.size = 0;
    }
    const rest = chunk.subarray(start);
    if (this.skipping || rest.length === 0) return lines;
    if (this.size + rest.length > this.maxBytes) {
      // Answered now, not when its end arrives: the client may be waiting before it sends more.
      lines.push(TOO_LONG);
      this.skipping = true;
      this.parts = [];
      this.size = 0;
    } else {
      this.parts.push(rest);
      this.size += rest.length;
    }
    return lines;
  }
}

/**
 * The SDK's stdio transport, reading lines our way: a line that is not a JSON-RPC message gets the
 * JSON-RPC error answer instead of silence, and an overlong line is skipped instead of closing the
 * session (the SDK closes it once 10 MB are buffered). Sending and closing stay the SDK's.
 */
class AnsweringStdioTransport extends StdioServerTransport {
  private readonly lines = new LineSplitter(MAX_LINE_BYTES);

  // start() subscribes this to stdin's data events; close() unsubscribes it.
  override _ondata = (chunk: Buffer): void => {
    for (const line of this.lines.push(chunk)) {
      // Blank lines carry nothing (NDJSON writers may send them); answering them would only add noise.
      if (line !== TOO_LONG && line.trim() === "") continue;
      try {
        const checked =
          line === TOO_LONG
            ? { error: errorResponse(-32000, `message exceeds the limit of ${MAX_LINE_BYTES} bytes: skipped up to the next newline`) }
            : checkLine(line);
        if ("error" in checked) {
          logger.debug(`stdio: answering ${checked.error.error.code} (${checked.error.error.message})`);
          void this.send(checked.error as unknown as JSONRPCMessage).catch(() => {});
          continue;
        }
        this.onmessage?.(checked.message);
      } catch (error) {
        // A throw here would end the process (it runs in stdin's data event): one bad line must not.
        logger.error(`stdio: a message could not be handled (${line === TOO_LONG ? "too long" : line.slice(0, 300)}):`, error);
        void this.send(errorResponse(-32603, "Internal error; see the server log") as unknown as JSONRPCMessage).catch(() => {});
      }
    }
  };
}

/** How long a stop waits for the cancelled calls to send their answers. */
const STOP_GRACE_MS = 5_000;

/** Serves until stdin closes (the client went away) or `stop` resolves (a signal), and resolves then. */
export async function serveStdio(tools: readonly ToolDefinition[], stop: Promise<unknown>): Promise<void> {
  const server = createMcpServer({ tools, via: "stdio" });
  const transport = new AnsweringStdioTransport();
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
  await drained(runningCalls, STOP_GRACE_MS);
  await server.close().catch(() => {});
}
