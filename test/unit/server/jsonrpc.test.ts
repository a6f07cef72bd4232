import { expect, test } from "bun:test";
import { asInvalidParams, checkBody, checkLine, checkMessage } from "../../../src/server/jsonrpc.ts";
import { LineSplitter, TOO_LONG } from "../../../src/server/stdio.ts";

const answer = (line: string) => {
  const checked = checkLine(line);
  return "error" in checked ? checked.error : "message";
};

test.each([
  ['{"jsonrpc":"2.0","id":1,"method":"ping"}', "message"],
  ['{"jsonrpc":"2.0","method":"notifications/initialized"}', "message"],
  ['{"jsonrpc":"2.0","id":"a","result":{}}', "message"],
  ['{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}', "message"],
  ["{", { jsonrpc: "2.0", id: null, error: { code: -32700, message: expect.stringMatching(/^Parse error: /) } }],
  ['{"id":1,"method":"ping"}', { jsonrpc: "2.0", id: 1, error: { code: -32600, message: 'Invalid Request: jsonrpc must be "2.0", got nothing' } }],
  ['{"jsonrpc":"2.0","id":true,"method":"ping"}', { jsonrpc: "2.0", id: null, error: { code: -32600, message: "Invalid Request: id must be a string or an integer, got true" } }],
  ['{"jsonrpc":"2.0","id":2,"method":"x","params":"p"}', { jsonrpc: "2.0", id: 2, error: { code: -32600, message: 'Invalid Request: params must be an object, got "p"' } }],
  ['{"jsonrpc":"2.0","id":3,"method":"x","params":{"_meta":5}}', { jsonrpc: "2.0", id: 3, error: { code: -32600, message: "Invalid Request: params._meta: expected object, got 5" } }],
  ['{"jsonrpc":"2.0","id":4}', { jsonrpc: "2.0", id: null, error: { code: -32600, message: expect.stringContaining("expected a request") } }],
  // A broken response's id is the client's own request id: not echoed, it would look like our answer to it.
  ['{"jsonrpc":"2.0","id":5,"result":7}', { jsonrpc: "2.0", id: null, error: { code: -32600, message: "Invalid Request: result: expected object, got 7" } }],
  ["[]", { jsonrpc: "2.0", id: null, error: { code: -32600, message: "Invalid Request: an empty batch" } }],
  ['[{"jsonrpc":"2.0","id":1,"method":"ping"}]', { jsonrpc: "2.0", id: null, error: { code: -32600, message: expect.stringContaining("batches are not supported over stdio") } }],
])("stdio line %s → %o", (line, expected) => {
  expect(answer(line)).toEqual(expected as never);
});

test("an HTTP body may be a batch; its first wrong item is named; an empty body is a parse error", () => {
  expect(checkBody([{ jsonrpc: "2.0", id: 1, method: "ping" }])).toBeUndefined();
  expect(checkBody([{ jsonrpc: "2.0", id: 1, method: "ping" }, 7])?.error.message).toBe("Invalid Request: expected a JSON object, got 7 (batch item 1)");
  expect(checkBody([])?.error.code).toBe(-32600);
  expect(checkBody(undefined)?.error.code).toBe(-32700);
  expect("message" in checkMessage({ jsonrpc: "2.0", id: 1, method: "ping" })).toBe(true);
});

test("lines split across chunks, CRLF, and an overlong line reported once and skipped to its newline", () => {
  const lines = new LineSplitter(10);
  expect(lines.push(Buffer.from('{"a"'))).toEqual([]);
  expect(lines.push(Buffer.from(":1}\r\n{}\n{"))).toEqual(['{"a":1}', "{}"]);
  expect(lines.push(Buffer.from("xxxxxxxxxxxx"))).toEqual([TOO_LONG]);
  expect(lines.push(Buffer.from("yyyy"))).toEqual([]);
  expect(lines.push(Buffer.from("zz\nok\n"))).toEqual(["ok"]);
  expect(new LineSplitter(4).push(Buffer.from("12345\n1234\n"))).toEqual([TOO_LONG, "1234"]);
});

test("the SDK's -32603 with zod issues as JSON becomes -32602 naming the field; other messages pass unchanged", () => {
  const issues = JSON.stringify([{ code: "invalid_type", path: ["params", "name"], message: "expected string, got nothing" }], null, 2);
  expect(asInvalidParams({ jsonrpc: "2.0", id: 1, error: { code: -32603, message: issues } })).toEqual({
    jsonrpc: "2.0",
    id: 1,
    error: { code: -32602, message: "Invalid params: params.name: expected string, got nothing" },
  });
  const internal = { jsonrpc: "2.0", id: 2, error: { code: -32603, message: "[object Object] broke" } } as const;
  expect(asInvalidParams(internal)).toBe(internal);
  const result = { jsonrpc: "2.0", id: 3, result: {} } as const;
  expect(asInvalidParams(result)).toBe(result);
});

test("a message nested deeper than 1000 levels is refused, a little less is not", () => {
  const nested = (levels: number) => JSON.parse(`{"jsonrpc":"2.0","id":1,"result":{"a":${"[".repeat(levels)}${"]".repeat(levels)}}}`);
  expect("message" in checkMessage(nested(990))).toBe(true);
  expect(checkMessage(nested(100_000))).toEqual({ error: { jsonrpc: "2.0", id: null, error: { code: -32600, message: "Invalid Request: nested deeper than 1000 levels" } } });
});
