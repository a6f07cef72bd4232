// Every probe really loads on this kernel (the CI equivalent of `bpftrace --dry-run`, which 0.17
// lacks), and trace_exec reports a known workload. Needs root, bpftrace and tracefs: in CI a
// missing one fails these tests instead of skipping them.
import { describe, expect } from "bun:test";
import { materializeProbe, PROBES, findProbe } from "../../src/probes/catalog.ts";
import { verifyProbe } from "../../src/probes/verify.ts";
import { rewriteForKernel } from "../../src/health/drops.ts";
import { testWithBpf } from "../helpers.ts";

describe("probes on this kernel", () => {
  for (const probe of PROBES) {
    testWithBpf(`${probe.name} compiles, passes the verifier and attaches`, async () => {
      expect(await verifyProbe(probe)).toEqual({ ok: true, detail: "loaded and attached" });
    }, 30_000);
  }

  testWithBpf("trace_drops as rewritten for kernels without a drop reason (before 5.17) loads too", async () => {
    const probe = findProbe("trace_drops")!;
    const rewritten = rewriteForKernel({ reasons: false, names: new Map() })!(probe.source);
    expect(rewritten).not.toContain("args->reason");
    expect(await verifyProbe({ ...probe, source: rewritten })).toEqual({ ok: true, detail: "loaded and attached" });
  }, 30_000);

  testWithBpf("trace_exec reports the exec and exit code of a process the test starts", async () => {
    const file = materializeProbe(findProbe("trace_exec")!);
    const bpftrace = Bun.spawn(["bpftrace", file.path], { stdout: "pipe", stderr: "pipe" });
    try {
      const lines: Record<string, unknown>[] = [];
      const reader = bpftrace.stdout.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      let child: Bun.Subprocess | undefined;
      const deadline = Date.now() + 20_000;
      const seen = () =>
        child !== undefined &&
        lines.some((e) => e.type === "exec" && e.pid === child!.pid && e.filename === "/bin/sh") &&
        lines.some((e) => e.type === "exit" && e.pid === child!.pid && e.exit_code === 7);
      while (!seen() && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        const complete = buffer.split("\n");
        buffer = complete.pop()!;
        for (const line of complete) {
          if (line.startsWith("{")) lines.push(JSON.parse(line));
        }
        // "ready" comes once every probe is attached ("Attaching N probes" is printed before).
        if (!child && lines.some((e) => e.type === "ready")) child = Bun.spawn(["/bin/sh", "-c", "exit 7"]);
      }
      expect(child).toBeDefined();
      expect(lines).toContainEqual(expect.objectContaining({ type: "exec", pid: child!.pid, comm: "sh", filename: "/bin/sh", ppid: process.pid }));
      expect(lines).toContainEqual(expect.objectContaining({ type: "exit", pid: child!.pid, exit_code: 7 }));
    } finally {
      bpftrace.kill("SIGINT");
      await bpftrace.exited;
      file.cleanup();
    }
  }, 30_000);

  testWithBpf("a probe whose reader is gone dies of SIGPIPE at its next write", async () => {
    const file = materializeProbe(findProbe("trace_exec")!);
    // `head -n 2` reads the attach banner and the ready line, then exits and closes the read end
    // of the pipe, as a killed server would.
    const pipeline = Bun.spawn(["/bin/sh", "-c", `bpftrace ${file.path} | head -n 2 >/dev/null; echo done`], { stdout: "pipe", stderr: "pipe" });
    try {
      const started = Date.now();
      const out = await new Response(pipeline.stdout).text();
      expect(await pipeline.exited).toBe(0);
      expect(out.trim()).toBe("done");
      // Its next write, an event or at the latest the heartbeat a second after attaching, is fatal.
      expect(Date.now() - started).toBeLessThan(15_000);
      const stray = Bun.spawnSync(["pgrep", "-f", file.path]).stdout.toString().trim();
      expect(stray).toBe("");
    } finally {
      pipeline.kill("SIGKILL");
      file.cleanup();
    }
  }, 30_000);
});
