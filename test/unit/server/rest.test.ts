import { expect, test } from "bun:test";
import { z } from "zod";
import { coerceQuery } from "../../../src/server/rest.ts";

const shape = {
  pid: z.number().int().optional(),
  duration: z.number().default(5),
  listening: z.boolean().optional(),
  command: z.string().optional(),
  states: z.array(z.string()).optional(),
};

test("query strings become the types the schema expects", () => {
  const params = new URLSearchParams("pid=42&duration=2.5&listening=true&command=123&states=LISTEN,ESTAB&states=SYN-SENT");
  expect(coerceQuery(shape, params)).toEqual({
    pid: 42,
    duration: 2.5,
    listening: true,
    command: "123",
    states: ["LISTEN", "ESTAB", "SYN-SENT"],
  });
});

test("a bare boolean flag means true, and 0/false mean false", () => {
  expect(coerceQuery(shape, new URLSearchParams("listening"))).toEqual({ listening: true });
  expect(coerceQuery(shape, new URLSearchParams("listening=0"))).toEqual({ listening: false });
});

test("values that do not convert stay text, so validation names them", () => {
  expect(coerceQuery(shape, new URLSearchParams("pid=abc&listening=maybe&pid2=1"))).toEqual({
    pid: "abc",
    listening: "maybe",
    pid2: "1",
  });
  expect(coerceQuery(shape, new URLSearchParams("pid="))).toEqual({ pid: "" });
});

test("?__proto__= and ?constructor= are parameters like any other (the schema then refuses them by name)", () => {
  const args = coerceQuery(shape, new URLSearchParams("__proto__=1&constructor=2&pid=3"));
  expect(Object.keys(args)).toEqual(["__proto__", "constructor", "pid"]);
  expect(args.pid).toBe(3);
  expect(z.object(shape).strict().safeParse(args).success).toBe(false);
});
