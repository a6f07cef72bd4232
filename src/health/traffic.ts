// Per-interface traffic from two readings of /proc/net/dev: the parser and the rate arithmetic,
// without I/O (the tool reads the file twice and measures the window).
//
// /proc/net/dev shows the network namespace of the process that reads it, so ipcscope reports the
// interfaces of its own namespace. The kernel keeps these counters as u64 (rtnl_link_stats64), so
// a value that goes down was reset (interface deleted and re-created, driver reset), not wrapped.
import { z } from "zod";

/** The counters of one interface, as bigint: u64 byte counters pass 2^53 (9 PB) on busy links. */
export interface InterfaceCounters {
  rx_bytes: bigint;
  rx_packets: bigint;
  rx_errors: bigint;
  rx_dropped: bigint;
  tx_bytes: bigint;
  tx_packets: bigint;
  tx_errors: bigint;
  tx_dropped: bigint;
}
type Counter = keyof InterfaceCounters;

// Column order of /proc/net/dev since Linux 2.2 (net/core/net-procfs.c, dev_seq_printf_stats):
// receive: bytes packets errs drop fifo frame compressed multicast;
// transmit: bytes packets errs drop fifo colls carrier compressed.
const COLUMNS: Partial<Record<number, Counter>> = {
  0: "rx_bytes",
  1: "rx_packets",
  2: "rx_errors",
  3: "rx_dropped",
  8: "tx_bytes",
  9: "tx_packets",
  10: "tx_errors",
  11: "tx_dropped",
};
/** Every counter read, in the order the answers list them. */
const COUNTERS = ["rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors", "tx_errors", "rx_dropped", "tx_dropped"] as const satisfies readonly Counter[];

/**
 * /proc/net/dev text → counters by interface name, in the file's order. The two header lines and
 * malformed lines are skipped.
 */
export function parseProcNetDev(text: string): Map<string, InterfaceCounters> {
  const result = new Map<string, InterfaceCounters>();
  for (const line of text.split("\n")) {
    // The name ends at the first ':' (the kernel refuses ':' in interface names). Split there,
    // not on whitespace: the name is right-aligned in 6 columns and a long rx_bytes value follows
    // the colon without a space ("    lo:11406765565 207141085 ...").
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const fields = line.slice(colon + 1).trim().split(/\s+/);
    if (name === "" || name.includes("|") || fields.length < 16 || !fields.every((field) => /^\d+$/.test(field))) continue;
    const counters = {} as InterfaceCounters;
    for (const [index, counter] of Object.entries(COLUMNS)) counters[counter!] = BigInt(fields[Number(index)]!);
    result.set(name, counters);
  }
  return result;
}

const rate = (delta: number, seconds: number) => Math.round((delta / seconds) * 100) / 100;
type PerSecond = { [C in (typeof COUNTERS)[number] as `${C}_per_s`]: number };

const perSecondShape = Object.fromEntries(COUNTERS.map((counter) => [`${counter}_per_s`, z.number()])) as { [K in keyof PerSecond]: z.ZodNumber };

/** Each counter's change over the window, per second. */
function perSecond(window: Record<Counter, number>, seconds: number): PerSecond {
  return Object.fromEntries(COUNTERS.map((counter) => [`${counter}_per_s`, rate(window[counter], seconds)])) as PerSecond;
}

export const interfaceTrafficSchema = z.object({
  interface: z.string(),
  ...perSecondShape,
  window: z
    .object({
      rx_packets: z.number(),
      tx_packets: z.number(),
      rx_bytes: z.number(),
      tx_bytes: z.number(),
      rx_errors: z.number(),
      tx_errors: z.number(),
      rx_dropped: z.number(),
      tx_dropped: z.number(),
    })
    .describe("Counts during the measured window"),
  since_reset: z
    .object({ rx_errors: z.number(), tx_errors: z.number(), rx_dropped: z.number(), tx_dropped: z.number() })
    .describe("Error and drop counters as the kernel holds them at the end (since the interface came up or its counters were reset)"),
  counter_reset: z
    .boolean()
    .describe("A counter went down (or the interface appeared) during the window: counted from zero, so the window's counts are a lower bound"),
});
export type InterfaceTraffic = z.infer<typeof interfaceTrafficSchema>;

export const trafficTotalsSchema = z.object({
  interfaces: z.number(),
  ...perSecondShape,
  rx_errors: z.number().describe("During the window"),
  tx_errors: z.number().describe("During the window"),
  rx_dropped: z.number().describe("During the window"),
  tx_dropped: z.number().describe("During the window"),
});
export type TrafficTotals = z.infer<typeof trafficTotalsSchema>;

/**
 * Rates of every interface present at the end of the window. An interface missing at the start
 * (it appeared) or with any counter lower at the end (reset) is counted from zero and flagged:
 * treating the whole interface as reset keeps its counters consistent with each other.
 * Interfaces present only at the start are returned as `vanished`.
 */
export function computeTraffic(
  before: Map<string, InterfaceCounters>,
  after: Map<string, InterfaceCounters>,
  elapsedS: number,
): { interfaces: InterfaceTraffic[]; totals: TrafficTotals; vanished: string[] } {
  if (!(elapsedS > 0)) throw new Error(`computeTraffic: the window must be longer than 0 s, got ${elapsedS}`);
  const interfaces: InterfaceTraffic[] = [];
  for (const [name, end] of after) {
    const start = before.get(name);
    const reset = !start || COUNTERS.some((counter) => end[counter] < start[counter]);
    const delta = (counter: Counter) => Number(reset ? end[counter] : end[counter] - start![counter]);
    const window = Object.fromEntries(COUNTERS.map((counter) => [counter, delta(counter)])) as Record<Counter, number>;
    interfaces.push({
      interface: name,
      ...perSecond(window, elapsedS),
      window,
      since_reset: {
        rx_errors: Number(end.rx_errors),
        tx_errors: Number(end.tx_errors),
        rx_dropped: Number(end.rx_dropped),
        tx_dropped: Number(end.tx_dropped),
      },
      counter_reset: reset,
    });
  }
  const summed = Object.fromEntries(COUNTERS.map((counter) => [counter, interfaces.reduce((total, entry) => total + entry.window[counter], 0)])) as Record<Counter, number>;
  const totals: TrafficTotals = {
    interfaces: interfaces.length,
    ...perSecond(summed, elapsedS),
    rx_errors: summed.rx_errors,
    tx_errors: summed.tx_errors,
    rx_dropped: summed.rx_dropped,
    tx_dropped: summed.tx_dropped,
  };
  const vanished = [...before.keys()].filter((name) => !after.has(name));
  return { interfaces, totals, vanished };
}
