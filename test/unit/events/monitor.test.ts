// The monitor's live stream, without starting a source: subscribers hear each added event before
// the store writes it, a broken one bothers nobody, and the store gets every event.
import { expect, test } from "bun:test";
import { makeEvent, type ConnectionEvent } from "../../../src/events/model.ts";
import { Monitor } from "../../../src/events/monitor.ts";
import { logger } from "../../../src/logger.ts";

/** Recent enough that the default 24 h age limit keeps everything, round for readable offsets. */
const T0 = Math.floor((Date.now() - 2 * 60 * 60 * 1000) / 1000) * 1000;
const at = (seconds: number) => T0 + seconds * 1000;

function connect(seconds: number, pid: number, comm: string, remote: [string, number], fields: Partial<ConnectionEvent> = {}): ConnectionEvent {
  return makeEvent({
    ts_ms: at(seconds), type: "connect", source: "ebpf", pid, comm, protocol: "tcp", family: remote[0].includes(":") ? "ipv6" : "ipv4",
    local_ip: "10.0.0.5", local_port: 40000 + seconds, remote_ip: remote[0], remote_port: remote[1], latency_us: 250, ...fields,
  });
}

test("subscribers hear each event as it is added, before any flush, until they unsubscribe", () => {
  const monitor = new Monitor();
  const store = monitor.store;
  const heard: number[] = [];
  const unsubscribe = monitor.subscribe((event) => heard.push(event.pid));
  // A failing subscriber is logged (not here: the test's output stays clean), and neither the
  // store nor the other subscribers notice.
  const stopBroken = monitor.subscribe(() => {
    throw new Error("a broken live tool");
  });
  const level = logger.level;
  logger.level = -999;
  try {
    monitor.add(connect(0, 100, "curl", ["10.0.0.1", 443]));
  } finally {
    logger.level = level;
    stopBroken();
  }
  expect(heard).toEqual([100]);
  unsubscribe();
  monitor.add(connect(1, 101, "curl", ["10.0.0.1", 443]));
  expect(heard).toEqual([100]);
  store.flush();
  expect(store.stats().events).toBe(2);
  monitor.close();
  expect(() => monitor.add(connect(2, 102, "curl", ["10.0.0.1", 443]))).toThrow("closed");
});
