import { describe, expect, test } from "bun:test";
import { buildChecks, installCommand, probeReadiness } from "../../../src/system/checks.ts";
import { collectSystemInfo, type SystemInfo } from "../../../src/system/info.ts";

const rhel = { id: "rhel", id_like: "fedora", version_id: "8.9", pretty_name: "RHEL 8.9" };
const debian = { id: "debian", id_like: null, version_id: "12", pretty_name: "Debian 12" };

describe("installCommand", () => {
  test("says dnf on RHEL and its rebuilds, apt-get on Debian and Ubuntu", () => {
    const pkgs = { rhel: "bpftrace", debian: "bpftrace", suse: "bpftrace" };
    expect(installCommand(rhel, pkgs)).toBe("dnf install -y bpftrace");
    expect(installCommand({ ...rhel, id: "rocky", id_like: "rhel centos fedora" }, pkgs)).toBe("dnf install -y bpftrace");
    expect(installCommand(debian, pkgs)).toBe("apt-get install -y bpftrace");
    expect(installCommand({ ...debian, id: "ubuntu", id_like: "debian" }, { ...pkgs, debian: "iproute2" })).toBe("apt-get install -y iproute2");
    expect(installCommand({ id: null, id_like: null, version_id: null, pretty_name: null }, pkgs)).toContain("package manager");
  });
});

/** A healthy host's facts, as this machine reports them; each test breaks one thing. */
async function healthyFacts(): Promise<SystemInfo> {
  const info = await collectSystemInfo();
  return {
    ...info,
    tools: { ...info.tools, bpftrace: { found: true, path: "/usr/bin/bpftrace", version: "0.17.0" }, ss: { found: true, path: "/usr/bin/ss", version: "6.1.0" } },
    kernel: { ...info.kernel, tracefs: "/sys/kernel/tracing", lockdown: "none" },
    privileges: { ...info.privileges, can_load_bpf: true, can_see_all_processes: true },
  };
}

describe("probeReadiness", () => {
  const probe = { tracepoints: ["sched:sched_process_exec", "sock:inet_sock_set_state"] };

  test("a probe runs when bpftrace, privilege, tracefs and its tracepoints are all there", async () => {
    expect(probeReadiness(probe, await healthyFacts(), () => true)).toEqual({ runnable: true, reasons: [], missing_tracepoints: [] });
  });

  test("names every missing piece, including which tracepoints the kernel lacks", async () => {
    const facts = await healthyFacts();
    const broken = {
      ...facts,
      tools: { ...facts.tools, bpftrace: { found: false, path: null, version: null } },
      privileges: { ...facts.privileges, can_load_bpf: false },
      kernel: { ...facts.kernel, lockdown: "confidentiality" },
    };
    const readiness = probeReadiness(probe, broken, (tp) => tp.startsWith("sched:"));
    expect(readiness.runnable).toBe(false);
    expect(readiness.missing_tracepoints).toEqual(["sock:inet_sock_set_state"]);
    expect(readiness.reasons.join("\n")).toContain("bpftrace is not installed");
    expect(readiness.reasons.join("\n")).toContain("no privilege to load BPF");
    expect(readiness.reasons.join("\n")).toContain("lockdown=confidentiality");
    expect(readiness.reasons.join("\n")).toContain("lacks tracepoint(s) sock:inet_sock_set_state");
  });

  test("without tracefs it says so instead of listing every tracepoint as missing", async () => {
    const facts = await healthyFacts();
    const readiness = probeReadiness(probe, { ...facts, kernel: { ...facts.kernel, tracefs: null } }, () => false);
    expect(readiness.reasons).toEqual(["tracefs is not mounted"]);
  });
});

describe("buildChecks", () => {
  test("a host without ss fails the core with the install command for its distro", async () => {
    const facts = await healthyFacts();
    const checks = buildChecks(
      { ...facts, host: { ...facts.host, distro: rhel }, tools: { ...facts.tools, ss: { found: false, path: null, version: null } } },
      { procOk: true },
    );
    const ss = checks.find((check) => check.name === "ss")!;
    expect(ss.status).toBe("error");
    expect(ss.fix).toBe("dnf install -y iproute");
  });

  test("a host without /proc fails the core", async () => {
    const checks = buildChecks(await healthyFacts(), { procOk: false });
    expect(checks.find((check) => check.name === "proc")!.status).toBe("error");
  });

  test("missing bpftrace, tracefs and privileges only warn, each with a fix", async () => {
    const facts = await healthyFacts();
    const checks = buildChecks(
      {
        ...facts,
        host: { ...facts.host, distro: debian },
        tools: { ...facts.tools, bpftrace: { found: false, path: null, version: null } },
        kernel: { ...facts.kernel, tracefs: null },
        privileges: { ...facts.privileges, can_load_bpf: false, can_see_all_processes: false, euid: 1000 },
        live_events_source: "ss-polling",
      },
      { procOk: true },
    );
    const byName = Object.fromEntries(checks.map((check) => [check.name, check]));
    expect(checks.some((check) => check.status === "error")).toBe(false);
    expect(byName.bpftrace).toMatchObject({ status: "warn", fix: "apt-get install -y bpftrace" });
    expect(byName.tracefs).toMatchObject({ status: "warn", fix: "mount -t tracefs nodev /sys/kernel/tracing" });
    expect(byName.privileges!.status).toBe("warn");
    expect(byName.privileges!.detail).toContain("uid 1000");
    expect(byName["live-events"]!.detail).toContain("ss polling");
  });

  test("a probe that failed to load is reported with bpftrace's error", async () => {
    const facts = await healthyFacts();
    const checks = buildChecks(
      {
        ...facts,
        probes: [{ name: "p", summary: "", tracepoints: [], missing_tracepoints: [], runnable: true, reasons: [], verified: { ok: false, detail: "ERROR: boom" } }],
      },
      { procOk: true },
    );
    expect(checks.find((check) => check.name === "probe:p")).toMatchObject({ status: "warn", detail: "does not load here: ERROR: boom" });
  });
});
