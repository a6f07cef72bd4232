/** A mistake in how ipcscope was invoked (a flag, an argument): printed without a stack, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * An expected failure of a tool call (no bpftrace, not root, unknown pid, bad filter): the caller
 * gets a tool result with `isError` and this message, which must say what to do. Bugs throw
 * anything else.
 */
export class ToolError extends Error {
  override name = "ToolError";
}

/** The client could not reach or keep talking to an MCP server (`ipcscope call`, `shell`): exit code 3. */
export class ConnectError extends Error {
  override name = "ConnectError";
}

/** The server refused the client's credentials (HTTP 401) or its access (403): exit code 4. */
export class AuthError extends Error {
  override name = "AuthError";
}

/**
 * Exit codes scripts can rely on (`ipcscope call`, and the other commands where they apply):
 * 0 success, 1 the tool answered with an error, 2 usage, 3 connection, 4 authentication.
 */
export const EXIT = { ok: 0, toolError: 1, usage: 2, connect: 3, auth: 4 } as const;
