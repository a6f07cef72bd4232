import { describe, expect, test } from "bun:test";
import { callName, parseErrorKey, summarizeSyscallErrors } from "../../../src/health/syscalls.ts";
import { errnoName } from "../../../src/util/errno.ts";

// Captured from `bpftrace -q -B none -f json probes/trace_syscall_errors.bt 0 ""` on x86_64 (Linux
// 6.18) while a copy of python3 named "err,work x" opened a missing file 5 times and connected to
// a closed port; the @errors print cut to a few keys, the @all print as it came.
const ERRORS_LINE =
  '{"type": "map", "data": {"@errors": {"3855,bpftrace,232,4": 1, "3857,err,work x,89,22": 1, "3853,timeout,-1,4": 1, ' +
  '"3857,err,work x,42,111": 1, "3857,err,work x,21,2": 1, "3853,timeout,130,514": 1, "31165,memfd:sealed-91,202,110": 1, ' +
  '"3857,err,work x,52,107": 1, "3868,mkdir,83,17": 2, "3855,bpftrace,321,2": 12, "3857,err,work x,257,2": 12, ' +
  '"3877,mv,257,2": 13, "3857,err,work x,16,25": 22, "3857,err,work x,262,2": 24, "528,memfd:sealed-91,202,110": 75}}}';
const ALL_LINE = '{"type": "map", "data": {"@all": {"0": 493}}}';

const counts = new Map(Object.entries(JSON.parse(ERRORS_LINE).data["@errors"] as Record<string, number>));
const all = (JSON.parse(ALL_LINE).data["@all"] as Record<string, number>)["0"]!;

describe("parseErrorKey", () => {
  test("pid from the front, syscall and errno from the back: a comm may hold commas and spaces", () => {
    expect(parseErrorKey("3857,err,work x,257,2")).toEqual({ pid: 3857, command: "err,work x", nr: 257, errno: 2 });
    expect(parseErrorKey("528,memfd:sealed-91,202,110")).toEqual({ pid: 528, command: "memfd:sealed-91", nr: 202, errno: 110 });
    expect(parseErrorKey("3853,timeout,-1,4")).toEqual({ pid: 3853, command: "timeout", nr: -1, errno: 4 });
    expect(parseErrorKey("1,,0,2")).toEqual({ pid: 1, command: "", nr: 0, errno: 2 });
  });

  test("anything else is null", () => {
    for (const key of ["", "12", "12,cat,2", "x,cat,2,2", "12,cat,open,2", "12,cat,2,"]) expect(parseErrorKey(key)).toBeNull();
  });
});

describe("names", () => {
  test("syscall -1 is the return from a signal handler; the kernel's restart codes have names", () => {
    expect(callName(-1, "x64")).toBe("(signal return)");
    expect(callName(257, "x64")).toBe("openat");
    expect(callName(56, "arm64")).toBe("openat");
    expect(errnoName(2)).toBe("ENOENT");
    expect(errnoName(514)).toBe("ERESTARTNOHAND");
    expect(errnoName(4000)).toBe("errno 4000");
  });
});

describe("summarizeSyscallErrors on a real capture", () => {
  const summary = summarizeSyscallErrors(counts, all, { durationS: 4, limit: 5, arch: "x64" });

  test("rows are named, most failures first, cut to the limit", () => {
    expect(summary.rows).toHaveLength(5);
    expect(summary.truncated).toBe(true);
    expect(summary.rows[0]).toEqual({ pid: 528, command: "memfd:sealed-91", syscall: "futex", syscall_nr: 202, errno: 110, errno_name: "ETIMEDOUT", count: 75, per_second: 18.8 });
    expect(summary.rows[1]).toMatchObject({ pid: 3857, command: "err,work x", syscall: "newfstatat", errno_name: "ENOENT", count: 24 });
    expect(summary.rows.map((row) => row.count)).toEqual([75, 24, 22, 13, 12]);
    // Ties in a stable order: pid, then syscall number.
    expect(summary.rows[4]).toMatchObject({ pid: 3855, command: "bpftrace", syscall: "bpf", count: 12 });
  });

  test("the process's own failures are all there, with their names", () => {
    const full = summarizeSyscallErrors(counts, all, { durationS: 4, limit: 100, arch: "x64" });
    expect(full.truncated).toBe(false);
    const mine = full.rows.filter((row) => row.pid === 3857).map((row) => `${row.syscall} ${row.errno_name} ${row.count}`);
    expect(mine.sort()).toEqual(["access ENOENT 1", "connect ECONNREFUSED 1", "getpeername ENOTCONN 1", "ioctl ENOTTY 22", "newfstatat ENOENT 24", "openat ENOENT 12", "readlink EINVAL 1"]);
    expect(full.rows.find((row) => row.syscall_nr === -1)).toMatchObject({ syscall: "(signal return)", errno_name: "EINTR" });
  });

  test("totals per syscall and per errno cover every key; total_errors is @all, the rest unattributed", () => {
    const keyed = [...counts.values()].reduce((a, b) => a + b, 0);
    expect(keyed).toBe(168);
    expect(summary.total_errors).toBe(493);
    expect(summary.unattributed).toBe(493 - 168);
    expect(summary.by_syscall.reduce((n, s) => n + s.count, 0)).toBe(keyed);
    expect(summary.by_errno.reduce((n, e) => n + e.count, 0)).toBe(keyed);
    expect(summary.by_errno.slice(0, 2)).toEqual([{ errno: 110, errno_name: "ETIMEDOUT", count: 76 }, { errno: 2, errno_name: "ENOENT", count: 62 }]);
    expect(summary.by_syscall[0]).toEqual({ syscall: "futex", syscall_nr: 202, count: 76 });
  });

  test("total_errors is never below what the keys add up to, and an empty window is all zeros", () => {
    expect(summarizeSyscallErrors(counts, 0, { durationS: 4, limit: 5, arch: "x64" })).toMatchObject({ total_errors: 168, unattributed: 0 });
    expect(summarizeSyscallErrors(new Map(), 0, { durationS: 0, limit: 5, arch: "x64" })).toEqual({ total_errors: 0, unattributed: 0, rows: [], truncated: false, by_syscall: [], by_errno: [] });
  });

  test("per_second is 0 before the probe is attached", () => {
    expect(summarizeSyscallErrors(counts, all, { durationS: 0, limit: 1, arch: "x64" }).rows[0]!.per_second).toBe(0);
  });

  test("the same capture named for aarch64 uses that table", () => {
    const arm = summarizeSyscallErrors(new Map([["10,cat,56,2", 3]]), 3, { durationS: 1, limit: 5, arch: "arm64" });
    expect(arm.rows[0]).toMatchObject({ syscall: "openat", syscall_nr: 56, errno_name: "ENOENT", per_second: 3 });
  });
});
