// Judgement on the facts of info.ts: what works, what does not, and the command that fixes it.
// Pure functions, so that every branch is tested without needing a broken host.
import { z } from "zod";
import type { Probe } from "../probes/catalog.ts";
import type { SystemInfo } from "./info.ts";

export const checkSchema = z.object({
  name: z.string(),
  status: z.enum(["ok", "warn", "error"]).describe("error: the core (snapshots) cannot work; warn: a feature degrades"),
  detail: z.string(),
  fix: z.string().optional().describe("what to run or change"),
});
export type Check = z.infer<typeof checkSchema>;

type Facts = Omit<SystemInfo, "checks" | "core_ok" | "probes" | "live_events_source">;

/** The package manager command for this distro, e.g. `dnf install -y bpftrace` on RHEL. */
export function installCommand(distro: Facts["host"]["distro"], packages: Record<"rhel" | "debian" | "suse", string>): string {
  const family = `${distro.id ?? ""} ${distro.id_like ?? ""}`;
  if (/rhel|fedora|centos|rocky|almalinux|ol\b|amzn/.test(family)) return `dnf install -y ${packages.rhel}`;
  if (/debian|ubuntu/.test(family)) return `apt-get install -y ${packages.debian}`;
  if (/suse/.test(family)) return `zypper install -y ${packages.suse}`;
  return `install ${packages.rhel} with your package manager`;
}

/** Whether a probe can run with these facts, and every reason it cannot. */
export function probeReadiness(
  probe: Pick<Probe, "tracepoints">,
  facts: Pick<Facts, "tools" | "kernel" | "privileges">,
  hasTracepoint: (tracepoint: string) => boolean,
): { runnable: boolean; reasons: string[]; missing_tracepoints: string[] } {
  const reasons: string[] = [];
  if (!facts.tools.bpftrace.found) reasons.push("bpftrace is not installed");
  if (!facts.privileges.can_load_bpf) reasons.push("no privilege to load BPF (needs root: CAP_SYS_ADMIN, or CAP_BPF+CAP_PERFMON on 5.8+)");
  if (facts.kernel.lockdown === "confidentiality") reasons.push("kernel lockdown=confidentiality forbids reading kernel memory from BPF");
  let missing: string[] = [];
  if (!facts.kernel.tracefs) {
    reasons.push("tracefs is not mounted");
  } else {
    missing = probe.tracepoints.filter((tp) => !hasTracepoint(tp));
    if (missing.length > 0) reasons.push(`this kernel lacks tracepoint(s) ${missing.join(", ")}`);
  }
  return { runnable: reasons.length === 0, reasons, missing_tracepoints: missing };
}

export function buildChecks(
  info: Facts & Pick<SystemInfo, "probes" | "live_events_source">,
  extra: { procOk: boolean },
): Check[] {
  const checks: Check[] = [];
  const distro = info.host.distro;
  const add = (check: Check) => checks.push(check);

  add(extra.procOk
    ? { name: "proc", status: "ok", detail: "/proc is mounted and readable" }
    : { name: "proc", status: "error", detail: "/proc is not mounted or not readable: no process can be seen", fix: "mount -t proc proc /proc" });

  add(info.tools.ss.found
    ? { name: "ss", status: "ok", detail: `${info.tools.ss.path} (iproute2 ${info.tools.ss.version ?? "unknown version"})` }
    : { name: "ss", status: "error", detail: "ss (iproute2) is not installed: socket snapshots cannot work", fix: installCommand(distro, { rhel: "iproute", debian: "iproute2", suse: "iproute2" }) });

  add(info.privileges.can_see_all_processes
    ? { name: "privileges", status: "ok", detail: `uid ${info.privileges.euid}, can see every process's sockets` }
    : { name: "privileges", status: "warn", detail: `running as uid ${info.privileges.euid} without CAP_SYS_PTRACE: other users' processes and their sockets are hidden`, fix: "run ipcscope as root (sudo ipcscope ...)" });

  add(info.tools.bpftrace.found
    ? { name: "bpftrace", status: "ok", detail: `${info.tools.bpftrace.path} v${info.tools.bpftrace.version ?? "?"}` }
    : { name: "bpftrace", status: "warn", detail: "bpftrace is not installed: live events fall back to ss polling (no short-lived connections, no latency)", fix: installCommand(distro, { rhel: "bpftrace", debian: "bpftrace", suse: "bpftrace" }) });

  add(info.kernel.tracefs
    ? { name: "tracefs", status: "ok", detail: `mounted at ${info.kernel.tracefs}` }
    : { name: "tracefs", status: "warn", detail: "tracefs is not mounted: tracepoint probes cannot attach", fix: "mount -t tracefs nodev /sys/kernel/tracing" });

  add(info.privileges.can_load_bpf
    ? { name: "bpf-privileges", status: "ok", detail: "may load BPF programs" }
    : { name: "bpf-privileges", status: "warn", detail: "may not load BPF programs: live events fall back to ss polling", fix: "run as root, or grant CAP_BPF and CAP_PERFMON (kernel 5.8+)" });

  add(info.kernel.btf
    ? { name: "btf", status: "ok", detail: "kernel BTF at /sys/kernel/btf/vmlinux" }
    : { name: "btf", status: "warn", detail: "no kernel BTF: probes that read kernel structs (parent pid, exit code, byte counts) cannot compile", fix: "use a kernel built with CONFIG_DEBUG_INFO_BTF (RHEL 8.2+, RHEL 9, any recent distro kernel)" });

  if (info.kernel.lockdown === "confidentiality") {
    add({ name: "lockdown", status: "warn", detail: "kernel lockdown=confidentiality (often Secure Boot): bpftrace cannot read kernel memory", fix: "boot with lockdown=integrity or none, or disable Secure Boot's lockdown" });
  } else {
    add({ name: "lockdown", status: "ok", detail: `lockdown ${info.kernel.lockdown ?? "not reported (securityfs not mounted or no lockdown LSM)"}` });
  }

  add(info.tools.bpftool.found
    ? { name: "bpftool", status: "ok", detail: `${info.tools.bpftool.path} v${info.tools.bpftool.version ?? "?"}` }
    : { name: "bpftool", status: "warn", detail: "bpftool is not installed: loaded BPF programs and maps cannot be listed", fix: installCommand(distro, { rhel: "bpftool", debian: "bpftool", suse: "bpftool" }) });

  add(info.tools.bcc.found
    ? { name: "bcc", status: "ok", detail: `python bcc ${info.tools.bcc.version ?? ""} via ${info.tools.bcc.path}`.trim() }
    : { name: "bcc", status: "ok", detail: `not installed (optional: ${info.tools.bpftrace.found ? "bpftrace is used" : "bpftrace or bcc gives live events"})` });

  for (const probe of info.probes) {
    if (probe.verified && !probe.verified.ok) {
      add({ name: `probe:${probe.name}`, status: "warn", detail: `does not load here: ${probe.verified.detail}` });
    } else if (!probe.runnable) {
      add({ name: `probe:${probe.name}`, status: "warn", detail: `cannot run here: ${probe.reasons.join("; ")}` });
    } else {
      add({ name: `probe:${probe.name}`, status: "ok", detail: probe.verified ? "loaded and attached" : "requirements met" });
    }
  }

  add({
    name: "live-events",
    status: info.live_events_source === "ss-polling" ? "warn" : "ok",
    detail: info.live_events_source === "ss-polling"
      ? "live events come from ss polling: connections shorter than the polling interval are missed"
      : `live events come from ${info.live_events_source}`,
  });
  return checks;
}
