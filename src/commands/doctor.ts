import { defineCommand } from "citty";
import { collectSystemInfo, type SystemInfo } from "../system/info.ts";
import { applyLogLevel, jsonArg, logLevelArg, print, table } from "./_shared.ts";

const MARK = { ok: "ok", warn: "WARN", error: "FAIL" } as const;

/** The doctor report for people: one line per check, the fix under each failing one, then a verdict. */
export function formatDoctorReport(info: SystemInfo): string {
  const { host, privileges } = info;
  const lines: string[] = [
    `ipcscope ${info.ipcscope.version} on ${host.hostname}: ${host.distro.pretty_name ?? "unknown distro"}, ` +
      `kernel ${host.kernel_release}, ${host.arch}`,
    "",
  ];
  const rows: string[][] = [];
  for (const check of info.checks) {
    rows.push([MARK[check.status], check.name, check.detail]);
    if (check.fix && check.status !== "ok") rows.push(["", "", `fix: ${check.fix}`]);
  }
  lines.push(table(["", "CHECK", "DETAIL"], rows), "");
  const caps = Object.entries(privileges.capabilities).map(([cap, on]) => `${cap.replace("CAP_", "")} ${on ? "yes" : "no"}`);
  lines.push(`capabilities (uid ${privileges.euid}): ${caps.join(", ")}`);
  lines.push(
    `kernel: BTF ${info.kernel.btf ? "yes" : "no"}, kprobes ${info.kernel.kprobes === null ? "unknown" : info.kernel.kprobes ? "yes" : "no"}, ` +
      `lockdown ${info.kernel.lockdown ?? "unknown"}, cgroup ${info.kernel.cgroup}, SELinux ${info.kernel.selinux}, ` +
      `unprivileged BPF ${info.kernel.unprivileged_bpf ?? "unknown"}`,
  );
  lines.push("");
  const problems = info.checks.filter((check) => check.status !== "ok").length;
  lines.push(
    info.core_ok
      ? `verdict: snapshots work; live events come from ${info.live_events_source}` +
          (problems > 0 ? `; ${problems} warning(s) above say what to install or change` : "; nothing to fix")
      : "verdict: ipcscope cannot work on this host until the FAIL lines above are fixed",
  );
  return lines.join("\n");
}

export default defineCommand({
  meta: {
    name: "doctor",
    description:
      "Check what works on this host (privileges, bpftrace, tracefs, BTF, probes) and say what to install or change. " +
      "Exits 1 when the core (process and socket snapshots) cannot work.",
  },
  args: {
    ...jsonArg,
    quick: { type: "boolean", description: "Only check each probe's requirements; do not load it (saves ~0.5 s per probe)", default: false },
    ...logLevelArg,
  },
  async run({ args }) {
    applyLogLevel(args["log-level"]);
    const info = await collectSystemInfo({ verifyProbes: !args.quick });
    print(args.json ? JSON.stringify(info, null, 2) : formatDoctorReport(info));
    if (!info.core_ok) process.exitCode = 1;
  },
});
