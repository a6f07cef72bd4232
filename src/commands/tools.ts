import { defineCommand } from "citty";
import { parseToolsets, selectTools } from "../tools/index.ts";
import { TOOLSETS } from "../tools/types.ts";
import { jsonArg, print, table, toolFilterArgs } from "./_shared.ts";

/** First sentence of a description, for one-line listings. */
export function firstSentence(text: string): string {
  return /^.*?[.:](?=\s|$)/.exec(text)?.[0] ?? text;
}

export default defineCommand({
  meta: { name: "tools", description: "List the MCP tools this server offers, one line each" },
  args: { ...jsonArg, ...toolFilterArgs },
  run({ args }) {
    const tools = selectTools({ toolsets: parseToolsets(args.toolsets), readOnly: args["read-only"] });
    if (args.json) {
      print(JSON.stringify(tools.map(({ name, title, description, toolset, annotations }) => ({ name, title, description, toolset, annotations })), null, 2));
      return;
    }
    const order = Object.keys(TOOLSETS);
    const sorted = [...tools].sort((a, b) => order.indexOf(a.toolset) - order.indexOf(b.toolset));
    print(table(
      ["TOOL", "TOOLSET", "ACCESS", "WHAT"],
      sorted.map((tool) => [
        tool.name,
        tool.toolset,
        tool.annotations.readOnlyHint ? "read-only" : tool.annotations.destructiveHint ? "destructive" : "writes",
        firstSentence(tool.description),
      ]),
    ));
  },
});
