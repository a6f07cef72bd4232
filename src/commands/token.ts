import { closeSync, constants, openSync, writeSync } from "node:fs";
import { defineCommand } from "citty";
import { UsageError } from "../errors.ts";
import { generateToken } from "../server/auth.ts";
import { print } from "./_shared.ts";

export default defineCommand({
  meta: {
    name: "token",
    description:
      "Make a strong bearer token (256 random bits) for serve --http: printed, or written to a new file readable by its owner only (--out). " +
      "Clients send it as Authorization: Bearer <token>.",
  },
  args: {
    out: { type: "string", description: "Write the token to this new file (mode 0600) instead of printing it", valueHint: "file" },
    force: { type: "boolean", description: "With --out: replace an existing file", default: false },
  },
  run({ args }) {
    const token = generateToken();
    if (args.out === undefined) {
      print(token);
      return;
    }
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (args.force ? 0 : constants.O_EXCL);
    let fd: number;
    try {
      fd = openSync(args.out, flags, 0o600);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "EEXIST") throw new UsageError(`--out: "${args.out}" exists; pass --force to replace it (clients using the old token will be refused)`);
      throw new UsageError(`--out: cannot create "${args.out}" (${(error as Error).message})`);
    }
    try {
      writeSync(fd, `${token}\n`);
    } finally {
      closeSync(fd);
    }
    process.stderr.write(`ipcscope: wrote a new token to ${args.out} (mode 0600); serve with --token-file ${args.out}\n`);
  },
});
