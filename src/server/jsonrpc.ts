// The answers JSON-RPC 2.0 (§5.1) gives to what is not a JSON-RPC message. The SDK's stdio transport
// only reports such a line to onerror and sends nothing, so the client waits forever; its HTTP
// transport answers every wrong shape with -32700 Parse error. Both transports check here first.
import {
  JSONRPCErrorResponseSchema,
  type JSONRPCMessage,
  JSONRPCNotificationSchema,
  JSONRPCRequestSchema,
  JSONRPCResultResponseSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { showValue } from "../util/zod-errors.ts";

export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;

/** An error response; unlike the SDK's type, its id may be null (the request's id could not be read). */
export interface JsonRpcErrorResponse {
  jsonrpc: "2.0";
  id: string | number | null;
  error: { code: number; message: string };
}

export const errorResponse = (code: number, message: string, id: string | number | null = null): JsonRpcErrorResponse => ({
  jsonrpc: "2.0",
  id,
  error: { code, message },
});

/**
 * Messages nested deeper than this are refused. The SDK writes a whole message into an error text
 * in places (JSON.stringify of a response with an unknown id), which overflows the stack on 100k
 * levels; no MCP message comes near 1000.
 */
export const MAX_DEPTH = 1000;

function deeperThan(value: unknown, levels: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (levels === 0) return true;
  for (const key in value) if (deeperThan((value as Record<string, unknown>)[key], levels - 1)) return true;
  return false;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
const isId = (value: unknown): value is string | number => typeof value === "string" || Number.isInteger(value);

/** Why a parsed value is not one JSON-RPC message, in words a person fixing the client can use. */
function problem(value: unknown): string {
  if (!isObject(value)) return `expected a JSON object, got ${showValue(value)}`;
  if (value.jsonrpc !== "2.0") return `jsonrpc must be "2.0", got ${showValue(value.jsonrpc)}`;
  if ("id" in value && !isId(value.id)) return `id must be a string or an integer, got ${showValue(value.id)}`;
  if ("method" in value) {
    if (typeof value.method !== "string") return `method must be a string, got ${showValue(value.method)}`;
    if ("params" in value && !isObject(value.params)) return `params must be an object, got ${showValue(value.params)}`;
  } else if (!("result" in value) && !("error" in value)) {
    return "expected a request or notification (method) or a response (result or error)";
  }
  if (deeperThan(value, MAX_DEPTH)) return `nested deeper than ${MAX_DEPTH} levels`;
  // The one schema of the SDK's union this shape is meant to be: its first issue says what is wrong
  // (the union's own issue would only say "invalid input").
  const schema =
    "method" in value ? ("id" in value ? JSONRPCRequestSchema : JSONRPCNotificationSchema) : "result" in value ? JSONRPCResultResponseSchema : JSONRPCErrorResponseSchema;
  const parsed = schema.safeParse(value);
  if (parsed.success) return "";
  const issue = parsed.error.issues[0]!;
  if (issue.code === "unrecognized_keys") return `unknown member(s) ${issue.keys.join(", ")}`;
  return `${issue.path.length > 0 ? `${issue.path.join(".")}: ` : ""}${issue.message}`;
}

/** One message: the message itself, or the -32600 answer (with the request's id when it can be read). */
export function checkMessage(value: unknown): { message: JSONRPCMessage } | { error: JsonRpcErrorResponse } {
  const why = problem(value);
  if (why === "") return { message: value as JSONRPCMessage };
  // Only a request's id names something the client waits for; a broken response's id is the client's own.
  const id = isObject(value) && "method" in value && isId(value.id) ? value.id : null;
  return { error: errorResponse(INVALID_REQUEST, `Invalid Request: ${why}`, id) };
}

/** One line of stdio: -32700 for text that is not JSON, else as checkMessage. Batches are not served on stdio. */
export function checkLine(line: string): { message: JSONRPCMessage } | { error: JsonRpcErrorResponse } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    // Bun's SyntaxError already starts with "JSON Parse error: ".
    return { error: errorResponse(PARSE_ERROR, `Parse error: ${(error as Error).message.replace(/^JSON Parse error: /, "")}`) };
  }
  if (Array.isArray(value)) {
    // MCP 2025-06-18 removed JSON-RPC batching, and the SDK's stdio transport never had it.
    const why = value.length === 0 ? "an empty batch" : "batches are not supported over stdio; send one message per line";
    return { error: errorResponse(INVALID_REQUEST, `Invalid Request: ${why}`) };
  }
  return checkMessage(value);
}

/**
 * A POST body on /mcp (already parsed; undefined when empty): the error answer, or undefined when
 * it is a message or a batch of them (the SDK's HTTP transport still takes batches).
 */
export function checkBody(body: unknown): JsonRpcErrorResponse | undefined {
  if (body === undefined) return errorResponse(PARSE_ERROR, "Parse error: the body is empty; expected a JSON-RPC message");
  if (!Array.isArray(body)) {
    const checked = checkMessage(body);
    return "error" in checked ? checked.error : undefined;
  }
  if (body.length === 0) return errorResponse(INVALID_REQUEST, "Invalid Request: an empty batch");
  for (const [index, item] of body.entries()) {
    const checked = checkMessage(item);
    if ("error" in checked) return errorResponse(INVALID_REQUEST, `${checked.error.error.message} (batch item ${index})`);
  }
  return undefined;
}

/**
 * The SDK answers request params its schema refuses (tools/call without a name, say) with -32603
 * Internal error and zod's issue list as pretty-printed JSON; JSON-RPC says -32602 Invalid params.
 * Every other message passes unchanged.
 */
export function asInvalidParams(message: JSONRPCMessage): JSONRPCMessage {
  if (!("error" in message) || message.error.code !== -32603 || !message.error.message.startsWith("[")) return message;
  let issues: unknown;
  try {
    issues = JSON.parse(message.error.message);
  } catch {
    return message;
  }
  if (!Array.isArray(issues) || issues.length === 0) return message;
  const parts: string[] = [];
  for (const issue of issues) {
    if (!isObject(issue) || typeof issue.message !== "string" || !Array.isArray(issue.path)) return message;
    parts.push(`${issue.path.length > 0 ? `${issue.path.join(".")}: ` : ""}${issue.message}`);
  }
  return { ...message, error: { code: -32602, message: `Invalid params: ${parts.join("; ")}` } };
}
