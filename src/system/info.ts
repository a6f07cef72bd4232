// What this host can do for ipcscope: read once per call, from /proc, /sys and a few helper
// commands run concurrently. Decoding lives in parse.ts, judgement in checks.ts.
import { existsSync, readFileSync, statSync, readdirSync } from "node:fs";
import { hostname, release } from "node:os";
import { z } from "zod";
import { exec, which } from "../util/exec.ts";
import { VERSION } from "../version.ts";
import { PROBES } from "../probes/catalog.ts";
import { verifyProbe } from "../probes/verify.ts";
import {
  decodeCapabilities, describeUnprivilegedBpf, kernelAtLeast, parseBpftoolVersion,
  parseBpftraceVersion, parseLockdown, parseOsRelease, parseSsVersion, statusField, unameArch,
} from "./parse.ts";
import { buildChecks, checkSchema, probeReadiness } from "./checks.ts";

const toolSchema = z.object({
  found: z.boolean(),
  path: z.string().nullable(),
  version: z.string().nullable(),
  detail: z.string().optional(),
});

export const KEY_CAPABILITIES = ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_KILL", "CAP_SYS_PTRACE"] as const;

export const systemInfoSchema = z.object({
  ipcscope: z.object({ version: z.string(), pid: z.number(), executable: z.string() }),
  host: z.object({
    hostname: z.string(),
    kernel_release: z.string(),
    arch: z.string(),
    distro: z.object({
      id: z.string().nullable(),
      id_like: z.string().nullable(),
      version_id: z.string().nullable(),
      pretty_name: z.string().nullable(),
    }),
  }),
  kernel: z.object({
    btf: z.boolean().describe("/sys/kernel/btf/vmlinux present: probes can read kernel structs"),
    tracefs: z.string().nullable().describe("where tracefs is mounted, null when it is not"),
    kprobes: z.boolean().nullable().describe("kprobe_events in tracefs; null when tracefs is not mounted"),
    lockdown: z.string().nullable().describe("active kernel lockdown mode; null when securityfs does not say"),
    unprivileged_bpf: z.string().nullable(),
    cgroup: z.enum(["v2", "hybrid", "v1", "unknown"]),
    selinux: z.enum(["enforcing", "permissive", "disabled"]),
  }),
  privileges: z.object({
    uid: z.number(),
    euid: z.number(),
    capabilities: z.object(Object.fromEntries(KEY_CAPABILITIES.map((cap) => [cap, z.boolean()])) as Record<(typeof KEY_CAPABILITIES)[number], z.ZodBoolean>),
    effective: z.array(z.string()).describe("every effective capability"),
    can_load_bpf: z.boolean(),
    can_see_all_processes: z.boolean(),
  }),
  tools: z.object({ bpftrace: toolSchema, bcc: toolSchema, bpftool: toolSchema, ss: toolSchema }),
  probes: z.array(
    z.object({
      name: z.string(),
      summary: z.string(),
      tracepoints: z.array(z.string()),
      missing_tracepoints: z.array(z.string()),
      runnable: z.boolean(),
      reasons: z.array(z.string()).describe("why it cannot run here; empty when it can"),
      verified: z.object({ ok: z.boolean(), detail: z.string() }).optional()
        .describe("result of really loading it (verify_probes)"),
    }),
  ),
  live_events_source: z.enum(["bpftrace", "bcc", "ss-polling"]).describe("where live events will come from on this host"),
  core_ok: z.boolean().describe("snapshots can work: /proc and ss are usable"),
  checks: z.array(checkSchema),
});
export type SystemInfo = z.infer<typeof systemInfoSchema>;

function readText(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

function findTracefs(): string | null {
  for (const dir of ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]) {
    try {
      if (readdirSync(`${dir}/events`).length > 0) return dir;
    } catch {
      // not mounted here
    }
  }
  return null;
}

function cgroupVersion(): SystemInfo["kernel"]["cgroup"] {
  if (existsSync("/sys/fs/cgroup/cgroup.controllers")) return "v2";
  if (existsSync("/sys/fs/cgroup/unified/cgroup.controllers")) return "hybrid";
  if (existsSync("/sys/fs/cgroup")) return "v1";
  return "unknown";
}

function selinuxMode(): SystemInfo["kernel"]["selinux"] {
  const enforce = readText("/sys/fs/selinux/enforce")?.trim();
  return enforce === "1" ? "enforcing" : enforce === "0" ? "permissive" : "disabled";
}

async function probeTool(program: string, versionArgs: string[], parse: (text: string) => string | null) {
  const path = which(program);
  if (!path) return { found: false, path: null, version: null };
  const result = await exec([path, ...versionArgs]);
  return { found: true, path, version: parse(result.stdout + result.stderr) };
}

/** bcc is a Python module; RHEL's python3-bcc and Debian's python3-bpfcc both install it for /usr/bin/python3. */
async function probeBcc() {
  const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : which("python3");
  if (!python) return { found: false, path: null, version: null, detail: "no python3" };
  const result = await exec([python, "-c", "import bcc; print(getattr(bcc, '__version__', 'unknown'))"]);
  if (result.code !== 0) return { found: false, path: null, version: null, detail: `${python} cannot import bcc` };
  return { found: true, path: python, version: result.stdout.trim() || null };
}

export async function collectSystemInfo(options: { verifyProbes?: boolean } = {}): Promise<SystemInfo> {
  const kernelRelease = release();
  const osRelease = parseOsRelease(readText("/etc/os-release") ?? readText("/usr/lib/os-release") ?? "");
  const status = readText("/proc/self/status") ?? "";
  const effective = decodeCapabilities(statusField(status, "CapEff") ?? "0");
  const has = (cap: string) => effective.includes(cap);
  // CAP_BPF and CAP_PERFMON exist since 5.8; before that loading tracing programs needs CAP_SYS_ADMIN.
  const canLoadBpf = has("CAP_SYS_ADMIN") || (kernelAtLeast(kernelRelease, 5, 8) && has("CAP_BPF") && has("CAP_PERFMON"));
  const tracefs = findTracefs();

  const [bpftrace, bcc, bpftool, ss] = await Promise.all([
    probeTool("bpftrace", ["--version"], parseBpftraceVersion),
    probeBcc(),
    probeTool("bpftool", ["version"], parseBpftoolVersion),
    probeTool("ss", ["-V"], parseSsVersion),
  ]);

  const lockdownText = readText("/sys/kernel/security/lockdown");
  const info: Omit<SystemInfo, "checks" | "core_ok" | "probes" | "live_events_source"> = {
    ipcscope: { version: VERSION, pid: process.pid, executable: process.execPath },
    host: {
      hostname: hostname(),
      kernel_release: kernelRelease,
      arch: unameArch(process.arch),
      distro: {
        id: osRelease.ID ?? null,
        id_like: osRelease.ID_LIKE ?? null,
        version_id: osRelease.VERSION_ID ?? null,
        pretty_name: osRelease.PRETTY_NAME ?? null,
      },
    },
    kernel: {
      btf: existsSync("/sys/kernel/btf/vmlinux"),
      tracefs,
      kprobes: tracefs ? existsSync(`${tracefs}/kprobe_events`) : null,
      lockdown: lockdownText === null ? null : parseLockdown(lockdownText),
      unprivileged_bpf: (() => {
        const value = readText("/proc/sys/kernel/unprivileged_bpf_disabled");
        return value === null ? null : describeUnprivilegedBpf(value);
      })(),
      cgroup: cgroupVersion(),
      selinux: selinuxMode(),
    },
    privileges: {
      uid: process.getuid?.() ?? -1,
      euid: process.geteuid?.() ?? -1,
      capabilities: Object.fromEntries(KEY_CAPABILITIES.map((cap) => [cap, has(cap)])) as SystemInfo["privileges"]["capabilities"],
      effective,
      can_load_bpf: canLoadBpf,
      // Reading another user's /proc/PID/fd needs ptrace-read access: root with CAP_SYS_PTRACE.
      can_see_all_processes: has("CAP_SYS_PTRACE") && (has("CAP_DAC_READ_SEARCH") || has("CAP_DAC_OVERRIDE")),
    },
    tools: { bpftrace, bcc, bpftool, ss },
  };

  const hasTracepoint = (tp: string) => {
    const [category, event] = tp.split(":");
    return tracefs !== null && existsSync(`${tracefs}/events/${category}/${event}`);
  };
  const probes = await Promise.all(
    PROBES.map(async (probe) => {
      const readiness = probeReadiness(probe, info, hasTracepoint);
      const entry: SystemInfo["probes"][number] = {
        name: probe.name,
        summary: probe.summary,
        tracepoints: probe.tracepoints,
        ...readiness,
      };
      if (options.verifyProbes) entry.verified = await verifyProbe(probe);
      return entry;
    }),
  );
  const liveEventsSource = probes.some((probe) => probe.runnable) ? "bpftrace" : "ss-polling";
  const procOk = statSafe("/proc/self/fd") && statSafe("/proc/1");
  const checks = buildChecks({ ...info, probes, live_events_source: liveEventsSource }, { procOk });
  return {
    ...info,
    probes,
    live_events_source: liveEventsSource,
    core_ok: checks.every((check) => check.status !== "error"),
    checks,
  };
}

function statSafe(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
