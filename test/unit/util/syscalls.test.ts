import { expect, test } from "bun:test";
import { syscallName } from "../../../src/util/syscalls.ts";

test("x86_64 numbers name the right syscalls", () => {
  for (const [nr, name] of [[0, "read"], [2, "open"], [42, "connect"], [59, "execve"], [257, "openat"], [5, "fstat"], [435, "clone3"]] as const) {
    expect(syscallName(nr, "x64")).toBe(name);
    expect(syscallName(nr, "x86_64")).toBe(name);
  }
});

test("aarch64 uses the generic table, with the 64-bit names of its __NR3264_ entries", () => {
  for (const [nr, name] of [[56, "openat"], [63, "read"], [203, "connect"], [221, "execve"], [25, "fcntl"], [62, "lseek"], [79, "newfstatat"], [80, "fstat"], [222, "mmap"], [223, "fadvise64"], [38, "renameat"], [163, "getrlimit"], [84, "sync_file_range"], [435, "clone3"], [447, "memfd_secret"]] as const) {
    expect(syscallName(nr, "arm64")).toBe(name);
    expect(syscallName(nr, "aarch64")).toBe(name);
  }
  // 244..259 are reserved for architecture-specific calls, which arm64 has none of; 403..423 are 32-bit only.
  expect(syscallName(244, "arm64")).toBe("syscall_244");
  expect(syscallName(403, "arm64")).toBe("syscall_403");
});

test("unknown numbers and architectures answer syscall_N; the default is this process's architecture", () => {
  expect(syscallName(9999, "x64")).toBe("syscall_9999");
  expect(syscallName(257, "riscv64")).toBe("syscall_257");
  expect(syscallName(process.arch === "arm64" ? 56 : 257)).toBe("openat");
});
