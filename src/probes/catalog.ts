// The probe catalogue: every script in probes/, embedded in the binary as text, with the facts its
// header declares. Adding a probe = adding its file to probes/ and one line to EMBEDDED below.
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import traceConnections from "../../probes/trace_connections.bt" with { type: "text" };
import traceExec from "../../probes/trace_exec.bt" with { type: "text" };
import traceSyscallErrors from "../../probes/trace_syscall_errors.bt" with { type: "text" };
import traceDrops from "../../probes/trace_drops.bt" with { type: "text" };
import traceTcpHealth from "../../probes/trace_tcp_health.bt" with { type: "text" };

const EMBEDDED: Record<string, string> = {
  trace_connections: traceConnections,
  trace_exec: traceExec,
  trace_syscall_errors: traceSyscallErrors,
  trace_drops: traceDrops,
  trace_tcp_health: traceTcpHealth,
};

export interface Probe {
  name: string;
  /** The header's first line, after the name. */
  summary: string;
  /** `category:event` tracepoints the probe attaches to. */
  tracepoints: string[];
  /** Free text from the header: kernel requirements and overhead, as the author wrote them. */
  kernel: string;
  overhead: string;
  /**
   * "json" when the header says `Output: json`: the probe runs under `bpftrace -f json`, so that it
   * can print its in-kernel aggregations (maps) as JSON; its printf lines are still NDJSON objects.
   */
  output: "lines" | "json";
  source: string;
}

const NOT_TRACEPOINTS = /^(kprobe|kretprobe|uprobe|uretprobe|kfunc|kretfunc|fentry|fexit|usdt|rawtracepoint):/;

/**
 * Reads the documentation header of a probe script (the first block comment):
 * ` * name - summary` then `Key: value` lines, with indented continuation lines.
 */
export function parseProbeHeader(name: string, source: string): Probe {
  const block = /\/\*([\s\S]*?)\*\//.exec(source)?.[1];
  if (!block) throw new Error(`probe ${name}: no header comment`);
  const lines = block.split("\n").map((line) => line.replace(/^\s*\*?\s?/, ""));
  const title = lines.find((line) => line.trim() !== "") ?? "";
  const summary = title.replace(new RegExp(`^${name}\\s*-\\s*`), "").trim();
  const fields: Record<string, string> = {};
  let current: string | null = null;
  for (const line of lines) {
    const field = /^([A-Z][A-Za-z ]*):\s*(.*)$/.exec(line);
    if (field) {
      current = field[1]!.toLowerCase();
      fields[current] = field[2]!.trim();
    } else if (current && /^\s+\S/.test(line)) {
      fields[current] += ` ${line.trim()}`;
    } else {
      current = null;
    }
  }
  const tracepoints = (fields.tracepoints ?? "")
    .split(",")
    .map((tp) => tp.trim())
    .filter(Boolean);
  if (tracepoints.length === 0) throw new Error(`probe ${name}: header lists no Tracepoints`);
  for (const tp of tracepoints) {
    // Only tracepoints: kprobes are missing on some kernels (ours), and their targets move between releases.
    if (!/^[a-z0-9_]+:[a-z0-9_]+$/.test(tp) || NOT_TRACEPOINTS.test(tp)) throw new Error(`probe ${name}: bad tracepoint "${tp}"`);
  }
  const output = (fields.output ?? "lines").split(/\s/)[0];
  if (output !== "lines" && output !== "json") throw new Error(`probe ${name}: Output must be "lines" or "json", not "${output}"`);
  return { name, summary, tracepoints, kernel: fields.kernel ?? "", overhead: fields.overhead ?? "", output, source };
}

export const PROBES: readonly Probe[] = Object.entries(EMBEDDED).map(([name, source]) =>
  parseProbeHeader(name, source),
);

export function findProbe(name: string): Probe | undefined {
  return PROBES.find((probe) => probe.name === name);
}

/**
 * Writes a probe's source to a private temporary file for bpftrace to read, and returns its path
 * and a cleanup function. (bpftrace reads programs from a file or -e; a file keeps error
 * messages pointing at real line numbers.)
 */
export function materializeProbe(probe: Probe): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "ipcscope-probe-"));
  const path = join(dir, `${probe.name}.bt`);
  writeFileSync(path, probe.source, { mode: 0o600 });
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
