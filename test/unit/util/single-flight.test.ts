import { describe, expect, test } from "bun:test";
import { singleFlight } from "../../../src/util/single-flight.ts";

/** A run the test finishes by hand, counting how often it was started. */
function gate<T>() {
  let starts = 0;
  let finish!: (value: T) => void;
  let fail!: (error: Error) => void;
  const make = () => {
    starts++;
    return new Promise<T>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
  };
  return { make, starts: () => starts, finish: (value: T) => finish(value), fail: (error: Error) => fail(error) };
}

describe("singleFlight", () => {
  test("concurrent calls with one key share one run and get the same result", async () => {
    const flight = singleFlight<{ n: number }>();
    const run = gate<{ n: number }>();
    const calls = Array.from({ length: 50 }, () => flight("k", run.make));
    run.finish({ n: 1 });
    const results = await Promise.all(calls);
    expect(run.starts()).toBe(1);
    for (const result of results) expect(result).toBe(results[0]!);
  });

  test("a call after the run settled starts a new run: nothing is cached", async () => {
    const flight = singleFlight<number>();
    const run = gate<number>();
    const first = flight("k", run.make);
    run.finish(1);
    expect(await first).toBe(1);
    const second = flight("k", run.make);
    run.finish(2);
    expect(await second).toBe(2);
    expect(run.starts()).toBe(2);
  });

  test("different keys run separately", async () => {
    const flight = singleFlight<string>();
    const a = gate<string>();
    const b = gate<string>();
    const calls = [flight("a", a.make), flight("b", b.make), flight("a", a.make)];
    a.finish("A");
    b.finish("B");
    expect(await Promise.all(calls)).toEqual(["A", "B", "A"]);
    expect([a.starts(), b.starts()]).toEqual([1, 1]);
  });

  test("every waiting caller gets the error of a failed run, and the next call tries again", async () => {
    const flight = singleFlight<number>();
    const run = gate<number>();
    const calls = [flight("k", run.make), flight("k", run.make)];
    run.fail(new Error("ss failed"));
    for (const call of calls) await expect(call).rejects.toThrow("ss failed");
    const again = flight("k", run.make);
    run.finish(3);
    expect(await again).toBe(3);
    expect(run.starts()).toBe(2);
  });
});
