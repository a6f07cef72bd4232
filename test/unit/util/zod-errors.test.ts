import { expect, test } from "bun:test";
import { z } from "zod";
import { showValue } from "../../../src/util/zod-errors.ts";

test("a value that fits no form of a union is shown with what the nearest form wanted", () => {
  const kind = z.enum(["connect", "close"]);
  const schema = z.object({ type: z.union([kind, z.array(kind)]), sig: z.union([z.string(), z.number().int()]) });
  const messages = (value: unknown) => schema.safeParse(value).error?.issues.map((issue) => issue.message);
  expect(messages({ type: "bogus", sig: "x" })).toEqual(['must be one of "connect", "close", got "bogus"']);
  expect(messages({ type: ["close", "bogus"], sig: "x" })).toEqual(['at 1: must be one of "connect", "close", got "bogus"']);
  expect(messages({ type: "close", sig: true })).toEqual(["expected string or number, got true"]);
});

test("values are shown as JSON cut to 60 characters, however long or deep they are", () => {
  expect(showValue({ name: "x", n: [1, 2, null, true] })).toBe('{"name":"x","n":[1,2,null,true]}');
  expect(showValue("x".repeat(1_000_000))).toBe(`"${"x".repeat(56)}...`);
  expect(showValue(undefined)).toBe("nothing");
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  const started = performance.now();
  expect(showValue(deep)).toBe(`${"[".repeat(57)}...`);
  expect(performance.now() - started).toBeLessThan(50);
});
