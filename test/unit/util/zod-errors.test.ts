import { expect, test } from "bun:test";
import { z } from "zod";
import "../../../src/util/zod-errors.ts";

test("a value that fits no form of a union is shown with what the nearest form wanted", () => {
  const kind = z.enum(["connect", "close"]);
  const schema = z.object({ type: z.union([kind, z.array(kind)]), sig: z.union([z.string(), z.number().int()]) });
  const messages = (value: unknown) => schema.safeParse(value).error?.issues.map((issue) => issue.message);
  expect(messages({ type: "bogus", sig: "x" })).toEqual(['must be one of "connect", "close", got "bogus"']);
  expect(messages({ type: ["close", "bogus"], sig: "x" })).toEqual(['at 1: must be one of "connect", "close", got "bogus"']);
  expect(messages({ type: "close", sig: true })).toEqual(["expected string or number, got true"]);
});
