// Pure parsers for the facts get_system_info reports. No I/O here: info.ts reads, these decode.

/** /etc/os-release: KEY=value lines, values optionally quoted (os-release(5)). */
export function parseOsRelease(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!match) continue;
    let value = match[2]!;
    // Quoted values may contain escaped quotes, dollars and backslashes.
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1).replace(/\\(["'$`\\])/g, "$1");
    fields[match[1]!] = value;
  }
  return fields;
}

/** capability(7) numbers, in order: bit N of a CapEff mask is CAPABILITY_NAMES[N]. */
export const CAPABILITY_NAMES = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
  "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
  "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
] as const;

/** Names of the capabilities set in a hex mask such as /proc/self/status's `CapEff: 000001fffeffffff`. */
export function decodeCapabilities(hexMask: string): string[] {
  const mask = BigInt(`0x${hexMask.trim() || "0"}`);
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if ((mask >> BigInt(bit)) & 1n) names.push(CAPABILITY_NAMES[bit] ?? `CAP_${bit}`);
  }
  return names;
}

/** One field of /proc/PID/status (`Name:\tvalue`), or undefined. */
export function statusField(statusText: string, field: string): string | undefined {
  const match = new RegExp(`^${field}:\\s*(.*)$`, "m").exec(statusText);
  return match?.[1]?.trim();
}

/** /sys/kernel/security/lockdown reads like `none [integrity] confidentiality`: the bracketed one is active. */
export function parseLockdown(text: string): string | null {
  return /\[(\w+)\]/.exec(text)?.[1] ?? null;
}

/** `bpftrace v0.17.0` (also `bpftrace v0.21.2-1-gabcdef`) → `0.17.0`. */
export function parseBpftraceVersion(text: string): string | null {
  return /bpftrace v?(\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1] ?? null;
}

/** `ss utility, iproute2-6.1.0` (RHEL 8: `ss utility, iproute2-ss190924`) → the part after iproute2-. */
export function parseSsVersion(text: string): string | null {
  return /iproute2-(?:ss)?([\w.]+)/.exec(text)?.[1] ?? null;
}

/** `bpftool v7.1.0` on its first line (older: `bpftool v5.14.0`). */
export function parseBpftoolVersion(text: string): string | null {
  return /bpftool v?(\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1] ?? null;
}

/** Kernel release `6.18.44-fc-v669` or `4.18.0-513.el8.x86_64` → [major, minor]. */
export function kernelVersion(release: string): [number, number] {
  const match = /^(\d+)\.(\d+)/.exec(release);
  return match ? [Number(match[1]), Number(match[2])] : [0, 0];
}

export function kernelAtLeast(release: string, major: number, minor: number): boolean {
  const [kMajor, kMinor] = kernelVersion(release);
  return kMajor > major || (kMajor === major && kMinor >= minor);
}

/** /proc/sys/kernel/unprivileged_bpf_disabled: 0 allowed, 1 disabled until reboot, 2 disabled (changeable). */
export function describeUnprivilegedBpf(value: string): string {
  switch (value.trim()) {
    case "0": return "allowed";
    case "1": return "disabled (locked until reboot)";
    case "2": return "disabled (admin can re-enable)";
    default: return `unknown value ${JSON.stringify(value.trim())}`;
  }
}

/** Node's process.arch → the name uname and the distros use. */
export function unameArch(nodeArch: string): string {
  return { x64: "x86_64", arm64: "aarch64", ia32: "i686", arm: "armv7l" }[nodeArch] ?? nodeArch;
}
