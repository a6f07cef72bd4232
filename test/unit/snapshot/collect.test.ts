import { describe, expect } from "bun:test";
import { collectHostSockets } from "../../../src/snapshot/collect.ts";
import { which } from "../../../src/util/exec.ts";
import { testIf } from "../../helpers.ts";

const withSs = testIf(which("ss") !== null, "ss (iproute2)");

describe("collectHostSockets", () => {
  withSs("concurrent calls with the same options share one collection; a later call collects again", async () => {
    const [a, b, c] = await Promise.all([collectHostSockets({ unix: true }), collectHostSockets(), collectHostSockets({ unix: true })]);
    // One run made one record: all three callers hold the same object ({} means unix: true).
    expect(b).toBe(a);
    expect(c).toBe(a);
    const later = await collectHostSockets({ unix: true });
    expect(later).not.toBe(a);
  });

  withSs("calls with other options do not share a collection", async () => {
    const [withUnix, inetOnly] = await Promise.all([collectHostSockets({ unix: true }), collectHostSockets({ unix: false })]);
    expect(inetOnly).not.toBe(withUnix);
    expect(inetOnly.sockets.some((socket) => socket.transport === "unix")).toBe(false);
  });
});
