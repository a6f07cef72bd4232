// The real Gemini CLI (@google/gemini-cli, a devDependency) adds ipcscope over HTTP and over stdio
// and reports both Connected. `gemini mcp list` prints to stderr and always exits 0, so the status
// text is what we check. A temporary HOME keeps it from touching ~/.gemini, and
// GEMINI_CLI_TRUST_WORKSPACE=true trusts the temporary folder (untrusted folders show "Disabled").
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinary, type HttpServer, ROOT, startHttpServer, testIf } from "../helpers.ts";

const GEMINI = join(ROOT, "node_modules", ".bin", "gemini");
const testWithGemini = testIf(existsSync(GEMINI) && Bun.which("node") !== null, "node and @google/gemini-cli (bun install)");

describe("Gemini CLI", () => {
  let server: HttpServer | undefined;
  const home = mkdtempSync(join(tmpdir(), "ipcscope-gemini-home-"));
  const workdir = mkdtempSync(join(tmpdir(), "ipcscope-gemini-wd-"));

  async function gemini(args: string[]): Promise<string> {
    const proc = Bun.spawn([GEMINI, ...args], {
      cwd: workdir,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, HOME: home, GEMINI_CLI_TRUST_WORKSPACE: "true", NO_COLOR: "1" },
    });
    const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return stdout + stderr;
  }

  beforeAll(async () => {
    if (existsSync(GEMINI)) server = await startHttpServer();
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(home, { recursive: true, force: true });
    rmSync(workdir, { recursive: true, force: true });
  });

  testWithGemini("`gemini mcp add` over HTTP and stdio, then `gemini mcp list` shows both Connected", async () => {
    const binary = await ensureBinary();
    const url = server!.url.toString();
    expect(await gemini(["mcp", "add", "--transport", "http", "ipcscope-http", url])).toContain('MCP server "ipcscope-http" added');
    expect(await gemini(["mcp", "add", "ipcscope-stdio", binary, "serve"])).toContain('MCP server "ipcscope-stdio" added');
    const settings = JSON.parse(readFileSync(join(workdir, ".gemini", "settings.json"), "utf8"));
    expect(settings.mcpServers["ipcscope-http"]).toEqual({ url, type: "http" });
    expect(settings.mcpServers["ipcscope-stdio"]).toEqual({ command: binary, args: ["serve"] });

    const listed = await gemini(["mcp", "list"]);
    expect(listed).toContain(`ipcscope-http: ${url} (http) - Connected`);
    expect(listed).toContain(`ipcscope-stdio: ${binary} serve (stdio) - Connected`);
    // And the server saw Gemini's session, including its GET /mcp stream, without complaint.
    expect(server!.stderr()).not.toMatch(/\[error\]|ERROR/);
  }, 60_000);
});
