// /proc/net/dev parsing and rates, on two real readings taken a second apart on the build machine
// (100 UDP datagrams of 100 bytes sent on lo between them) and on edited copies for resets.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { computeTraffic, parseProcNetDev } from "../../../src/health/traffic.ts";
import { ROOT } from "../../helpers.ts";

const fixture = (name: string) => readFileSync(join(ROOT, "test", "fixtures", "proc", name), "utf8");
const before = fixture("net-dev.txt");
const after = fixture("net-dev-1s-later.txt");

describe("parseProcNetDev", () => {
  test("reads every interface of a real capture, in order, skipping the two header lines", () => {
    const counters = parseProcNetDev(before);
    expect([...counters.keys()]).toEqual(["lo", "ifb0", "ifb1", "eth0"]);
    expect(counters.get("eth0")).toEqual({
      rx_bytes: 318285245n,
      rx_packets: 8860n,
      rx_errors: 0n,
      rx_dropped: 0n,
      tx_bytes: 663392n,
      tx_packets: 5021n,
      tx_errors: 0n,
      tx_dropped: 0n,
    });
  });

  test("takes the columns by position: errs, drop, and transmit after the eight receive fields", () => {
    const line = "  eth1: 100 10 1 2 3 4 5 6 200 20 7 8 9 10 11 12\n";
    expect(parseProcNetDev(line).get("eth1")).toEqual({
      rx_bytes: 100n,
      rx_packets: 10n,
      rx_errors: 1n,
      rx_dropped: 2n,
      tx_bytes: 200n,
      tx_packets: 20n,
      tx_errors: 7n,
      tx_dropped: 8n,
    });
  });

  test("a large rx_bytes glued to the colon, and counters past 2^53, are read exactly", () => {
    const line = "    lo:18446744073709551615 207141085    0    0    0     0          0         0 11406765565 207141085    0    0    0     0       0          0";
    const lo = parseProcNetDev(line).get("lo")!;
    expect(lo.rx_bytes).toBe(18446744073709551615n);
    expect(lo.rx_packets).toBe(207141085n);
  });

  test("malformed and short lines are skipped", () => {
    expect(parseProcNetDev("garbage\n  x: 1 2 3\n  y: a b c d e f g h i j k l m n o p\n").size).toBe(0);
  });
});

describe("computeTraffic", () => {
  test("the real pair: 100 packets of 128 bytes each way on lo over one second, nothing on eth0", () => {
    const { interfaces, totals, vanished } = computeTraffic(parseProcNetDev(before), parseProcNetDev(after), 1);
    const lo = interfaces.find((entry) => entry.interface === "lo")!;
    expect(lo).toMatchObject({ rx_packets_per_s: 100, tx_packets_per_s: 100, rx_bytes_per_s: 12800, tx_bytes_per_s: 12800, counter_reset: false });
    expect(lo.window).toMatchObject({ rx_packets: 100, tx_packets: 100, rx_errors: 0, tx_dropped: 0 });
    expect(interfaces.find((entry) => entry.interface === "eth0")).toMatchObject({ rx_packets_per_s: 0, tx_bytes_per_s: 0 });
    expect(totals).toMatchObject({ interfaces: 4, rx_packets_per_s: 100, tx_packets_per_s: 100, rx_bytes_per_s: 12800 });
    expect(vanished).toEqual([]);
  });

  test("rates divide by the measured window, and errors and drops have rates and kernel totals", () => {
    const start = parseProcNetDev("eth0: 1000 10 5 7 0 0 0 0 2000 20 1 3 0 0 0 0");
    const end = parseProcNetDev("eth0: 4000 40 11 7 0 0 0 0 2600 26 1 9 0 0 0 0");
    const [eth0] = computeTraffic(start, end, 2).interfaces;
    expect(eth0).toMatchObject({
      rx_packets_per_s: 15,
      rx_bytes_per_s: 1500,
      tx_packets_per_s: 3,
      tx_bytes_per_s: 300,
      rx_errors_per_s: 3,
      rx_dropped_per_s: 0,
      tx_errors_per_s: 0,
      tx_dropped_per_s: 3,
      window: { rx_errors: 6, rx_dropped: 0, tx_errors: 0, tx_dropped: 6 },
      since_reset: { rx_errors: 11, rx_dropped: 7, tx_errors: 1, tx_dropped: 9 },
    });
  });

  test("a counter that went down is a reset: counted from zero, flagged, never negative", () => {
    const start = parseProcNetDev("eth0: 900000 9000 4 0 0 0 0 0 500 5 0 0 0 0 0 0");
    const end = parseProcNetDev("eth0: 3000 30 0 0 0 0 0 0 700 7 0 0 0 0 0 0");
    const [eth0] = computeTraffic(start, end, 1).interfaces;
    expect(eth0!.counter_reset).toBe(true);
    // Every counter of the interface restarts, also those that happen to be higher now.
    expect(eth0!.window).toMatchObject({ rx_packets: 30, rx_bytes: 3000, tx_packets: 7, tx_bytes: 700, rx_errors: 0 });
    expect(Object.values(eth0!.window).every((value) => value >= 0)).toBe(true);
  });

  test("an interface that appeared is counted from zero and flagged; one that went away is listed", () => {
    const start = parseProcNetDev("eth0: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\nveth1: 5 5 0 0 0 0 0 0 5 5 0 0 0 0 0 0");
    const end = parseProcNetDev("eth0: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\nveth2: 50 5 0 0 0 0 0 0 0 0 0 0 0 0 0 0");
    const result = computeTraffic(start, end, 1);
    expect(result.interfaces.find((entry) => entry.interface === "veth2")).toMatchObject({ counter_reset: true, rx_packets_per_s: 5 });
    expect(result.vanished).toEqual(["veth1"]);
  });

  test("rates keep two decimals, and a window of zero is a bug", () => {
    const start = parseProcNetDev("eth0: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0");
    const end = parseProcNetDev("eth0: 10 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0");
    expect(computeTraffic(start, end, 3).interfaces[0]!.rx_bytes_per_s).toBe(3.33);
    expect(() => computeTraffic(start, end, 0)).toThrow("longer than 0 s, got 0");
  });
});
