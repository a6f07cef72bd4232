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
