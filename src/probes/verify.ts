// Proving that a probe really loads here: compile, pass the verifier, attach, detach.
// bpftrace 0.17 has no --dry-run; `-c /bin/true` attaches every probe, runs a command that exits
// at once, and exits when it does, which is the same proof.
import { exec, which } from "../util/exec.ts";
import { materializeProbe, type Probe } from "./catalog.ts";

/** Compiling and attaching takes ~0.5 s here; BTF parsing on a slow host can take several. */
const VERIFY_TIMEOUT_MS = 30_000;

export interface ProbeVerification {
  ok: boolean;
  detail: string;
}

/** bpftrace prints this on every run when it cannot raise RLIMIT_MEMLOCK; harmless on 5.11+ (memcg accounting). */
const HARMLESS_STDERR = /couldn't set RLIMIT_MEMLOCK/;

/** The lines of bpftrace's stderr worth showing a person: its errors, without the known noise. */
export function bpftraceErrors(stderr: string): string[] {
  return stderr
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !HARMLESS_STDERR.test(line) && !/^Attaching \d+ probes?/.test(line));
}

/**
 * A verification under way per probe (and source): callers that ask while it runs share it, so a
 * client sending get_system_info {verify_probes: true} in a loop runs at most one bpftrace per
 * probe (ten calls at once ran fifty); the answer is still no older than the ask.
 */
const running = new Map<string, Promise<ProbeVerification>>();

export function verifyProbe(probe: Probe): Promise<ProbeVerification> {
  const key = `${probe.name}\0${probe.source}`;
  const shared = running.get(key);
  if (shared) return shared;
  const run = runVerification(probe).finally(() => running.delete(key));
  running.set(key, run);
  return run;
}

/** Resolves when the verifications under way have ended (server shutdown: their bpftrace must not outlive it). */
export async function verificationsEnded(): Promise<void> {
  await Promise.allSettled([...running.values()]);
}

async function runVerification(probe: Probe): Promise<ProbeVerification> {
  const bpftrace = which("bpftrace");
  if (!bpftrace) return { ok: false, detail: "bpftrace is not installed" };
  const file = materializeProbe(probe);
  try {
    const result = await exec([bpftrace, "-c", "/bin/true", file.path], { timeoutMs: VERIFY_TIMEOUT_MS });
    if (result.timedOut) return { ok: false, detail: `bpftrace did not finish within ${VERIFY_TIMEOUT_MS / 1000} s` };
    if (result.code === 0) return { ok: true, detail: "loaded and attached" };
    const errors = bpftraceErrors(result.stderr);
    return { ok: false, detail: errors.slice(0, 3).join(" | ") || `bpftrace exited with code ${result.code}` };
  } finally {
    file.cleanup();
  }
}
