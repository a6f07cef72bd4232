import { readFileSync } from "node:fs";
import { z } from "zod";
import { ToolError } from "../errors.ts";
import { computeTraffic, interfaceTrafficSchema, parseProcNetDev, trafficTotalsSchema } from "../health/traffic.ts";
import { defineTool, READ_ONLY } from "./types.ts";

const SOURCE = "/proc/net/dev";
/** Inline tool calls stay under the 60 s many MCP clients give a request. */
const MAX_DURATION_S = 55;

function readCounters() {
  return parseProcNetDev(readFileSync(SOURCE, "latin1"));
}

/** Waits `ms`, or less when the call is cancelled. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

export default defineTool({
  name: "get_interface_traffic",
  title: "Interface traffic",
  description:
    "Packets/s and bytes/s in and out of each network interface over `duration` seconds, with receive/transmit " +
    "errors and drops (during the window, per second, and the kernel's totals), from two readings of the kernel's " +
    "counters in /proc/net/dev (this server's network namespace). Filter with `interface` (exact name). Includes " +
    "totals over all interfaces and the measured window. On lo every packet counts once received and once sent. " +
    "No per-port or per-process breakdown.",
  toolset: "health",
  input: {
    duration: z
      .number()
      .min(0.1)
      .max(MAX_DURATION_S)
      .default(3)
      .describe(`Seconds to measure (0.1 to ${MAX_DURATION_S}; a shorter window measures scheduling jitter, not traffic)`),
    interface: z.string().min(1).optional().describe("Only this interface (exact name, e.g. eth0, lo)"),
  },
  output: {
    interfaces: z.array(interfaceTrafficSchema),
    totals: trafficTotalsSchema.describe("Over every interface, whatever the filter"),
    window_s: z.number().describe("Measured length of the window (monotonic clock)"),
    requested_s: z.number(),
    cancelled: z.boolean().describe("The call was cancelled before the window ended; rates are over the shorter window"),
    vanished: z.array(z.string()).describe("Interfaces that disappeared during the window"),
    source: z.string(),
    note: z.string(),
  },
  annotations: READ_ONLY,
  handler: async (args, ctx) => {
    const before = readCounters();
    const started = performance.now();
    if (args.interface !== undefined && !before.has(args.interface)) {
      throw new ToolError(`interface: no interface "${args.interface}" in ${SOURCE}; known: ${[...before.keys()].join(", ")}`);
    }
    const endAt = started + args.duration * 1000;
    // One wake-up per second so progress goes out once a second; the last step ends on time.
    for (let second = 1; !ctx.signal.aborted; second++) {
      const remaining = endAt - performance.now();
      if (remaining <= 0) break;
      await sleep(Math.min(1000, remaining), ctx.signal);
      if (ctx.progress && !ctx.signal.aborted && performance.now() < endAt) {
        ctx.progress(second, args.duration, `measuring for ${args.duration} s`);
      }
    }
    const after = readCounters();
    // (A window cancelled at once still has the microseconds of the two reads.)
    const windowS = Math.max((performance.now() - started) / 1000, 1e-6);
    const traffic = computeTraffic(before, after, windowS);
    const interfaces = args.interface === undefined ? traffic.interfaces : traffic.interfaces.filter((entry) => entry.interface === args.interface);
    if (args.interface !== undefined && interfaces.length === 0) {
      throw new ToolError(`interface: "${args.interface}" disappeared during the window; known now: ${[...after.keys()].join(", ")}`);
    }
    return {
      interfaces,
      totals: traffic.totals,
      window_s: Math.round(windowS * 1000) / 1000,
      requested_s: args.duration,
      cancelled: ctx.signal.aborted,
      vanished: traffic.vanished,
      source: SOURCE,
      note:
        "Interface counters only: per-port, per-connection and per-process traffic are not part of this tool " +
        "(see get_process_connection_snapshot for sockets and their queues).",
    };
  },
});
