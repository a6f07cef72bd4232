import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  decodeCapabilities, describeUnprivilegedBpf, kernelAtLeast, parseBpftoolVersion, parseBpftraceVersion,
  parseLockdown, parseOsRelease, parseSsVersion, statusField, unameArch,
} from "../../../src/system/parse.ts";
import { ROOT } from "../../helpers.ts";

const fixture = (name: string) => readFileSync(join(ROOT, "test/fixtures/os-release", name), "utf8");

describe("parseOsRelease", () => {
  test("reads RHEL 8's quoted and unquoted values", () => {
    const fields = parseOsRelease(fixture("rhel-8.9.txt"));
    expect(fields.ID).toBe("rhel");
    expect(fields.ID_LIKE).toBe("fedora");
    expect(fields.VERSION_ID).toBe("8.9");
    expect(fields.PRETTY_NAME).toBe("Red Hat Enterprise Linux 8.9 (Ootpa)");
    expect(fields.REDHAT_BUGZILLA_PRODUCT_VERSION).toBe("8.9");
  });

  test("reads this machine's Debian file", () => {
    const fields = parseOsRelease(fixture("debian-12.txt"));
    expect(fields.ID).toBe("debian");
    expect(fields.VERSION_ID).toBe("12");
  });

  test("unescapes quotes inside a quoted value and ignores comments and junk", () => {
    expect(parseOsRelease('# comment\nNAME="My \\"Linux\\""\nnot a field\nID=x\n')).toEqual({ NAME: 'My "Linux"', ID: "x" });
  });
});

describe("decodeCapabilities", () => {
  test("decodes this sandbox's root mask, which lacks CAP_SYS_RESOURCE", () => {
    const caps = decodeCapabilities("000001fffeffffff");
    expect(caps).toContain("CAP_BPF");
    expect(caps).toContain("CAP_PERFMON");
    expect(caps).toContain("CAP_SYS_ADMIN");
    expect(caps).toContain("CAP_CHECKPOINT_RESTORE");
    expect(caps).not.toContain("CAP_SYS_RESOURCE");
    expect(caps).toHaveLength(40);
  });

  test("decodes a RHEL 8 (4.18) root mask, where CAP_BPF does not exist yet", () => {
    const caps = decodeCapabilities("0000003fffffffff");
    expect(caps).toContain("CAP_SYS_ADMIN");
    expect(caps).toContain("CAP_AUDIT_READ");
    expect(caps).not.toContain("CAP_BPF");
  });

  test("an empty mask means no capabilities", () => {
    expect(decodeCapabilities("0000000000000000")).toEqual([]);
  });

  test("reads CapEff out of /proc/self/status", () => {
    const status = readFileSync("/proc/self/status", "utf8");
    expect(statusField(status, "CapEff")).toMatch(/^[0-9a-f]{16}$/);
    expect(statusField(status, "Nope")).toBeUndefined();
  });
});

describe("version and mode parsers", () => {
  test.each([
    ["bpftrace v0.17.0", "0.17.0"],
    ["bpftrace v0.21.2-1-gabc123", "0.21.2"],
    ["bpftrace v0.16.0-rhel", "0.16.0"],
    ["garbage", null],
  ])("parseBpftraceVersion(%p) is %p", (text, expected) => {
    expect(parseBpftraceVersion(text)).toBe(expected);
  });

  test.each([
    ["ss utility, iproute2-6.1.0", "6.1.0"],
    ["ss utility, iproute2-ss190924", "190924"],
    ["ss utility, iproute2-6.2.0, libbpf 1.2.0", "6.2.0"],
  ])("parseSsVersion(%p) is %p", (text, expected) => {
    expect(parseSsVersion(text)).toBe(expected);
  });

  test("parseBpftoolVersion reads the first line", () => {
    expect(parseBpftoolVersion("bpftool v7.1.0\nusing libbpf v1.1\nfeatures: libbfd\n")).toBe("7.1.0");
  });

  test("parseLockdown picks the bracketed mode", () => {
    expect(parseLockdown("none [integrity] confidentiality\n")).toBe("integrity");
    expect(parseLockdown("[none] integrity confidentiality")).toBe("none");
    expect(parseLockdown("")).toBeNull();
  });

  test("kernelAtLeast compares major and minor", () => {
    expect(kernelAtLeast("4.18.0-513.el8.x86_64", 5, 8)).toBe(false);
    expect(kernelAtLeast("5.14.0-362.el9.x86_64", 5, 8)).toBe(true);
    expect(kernelAtLeast("6.18.44-fc-v669", 6, 18)).toBe(true);
  });

  test("describeUnprivilegedBpf explains each value", () => {
    expect(describeUnprivilegedBpf("0\n")).toBe("allowed");
    expect(describeUnprivilegedBpf("2")).toContain("disabled");
    expect(describeUnprivilegedBpf("9")).toContain("unknown");
  });

  test("unameArch maps Node's names to uname's", () => {
    expect(unameArch("x64")).toBe("x86_64");
    expect(unameArch("arm64")).toBe("aarch64");
    expect(unameArch("riscv64")).toBe("riscv64");
  });
});
