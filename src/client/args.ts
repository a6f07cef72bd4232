// Command-line text → a tool's arguments, typed by the JSON Schema the server serves in tools/list.
// The server is the truth: a remote one may be another version than this binary, so nothing here
// knows the tools (the REST mirror's coerceQuery does the same from the zod schemas, server-side).
// Pure: no I/O.
import { UsageError } from "../errors.ts";

export interface JsonSchema {
  type?: string | readonly string[];
  enum?: readonly unknown[];
  anyOf?: readonly JsonSchema[];
  oneOf?: readonly JsonSchema[];
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  description?: string;
  default?: unknown;
}

/** What the client needs of a tool from tools/list. */
export interface ToolSchema {
  name: string;
  description?: string;
  inputSchema: { properties?: Record<string, JsonSchema>; required?: readonly string[] };
}

/** Flags that conventionally mean another parameter, used when the tool has that one and not this. */
const ALIASES: Record<string, string> = { process: "command" };

/** zod's bounds for "any safe integer" say nothing to a person: left out of messages. */
const SAFE = Number.MAX_SAFE_INTEGER;

/** `max_events` → `--max-events`. */
export function flagOf(param: string): string {
  return `--${param.replace(/_/g, "-")}`;
}

const properties = (tool: ToolSchema) => tool.inputSchema.properties ?? {};

/** The parameter a flag (without dashes, kebab or snake case, or an alias) names, if the tool has it. */
export function paramOf(tool: ToolSchema, flag: string): string | undefined {
  const props = properties(tool);
  const name = flag.replace(/-/g, "_");
  if (name in props) return name;
  const alias = ALIASES[name];
  return alias !== undefined && alias in props ? alias : undefined;
}

function types(schema: JsonSchema): string[] {
  return schema.type === undefined ? [] : [schema.type].flat();
}

/** A flag that needs no value: its schema is a boolean (perhaps nullable). */
export function isBooleanSchema(schema: JsonSchema): boolean {
  const kinds = types(schema).filter((type) => type !== "null");
  return kinds.length === 1 && kinds[0] === "boolean";
}

function bounds(schema: JsonSchema): string {
  const min = schema.minimum !== undefined && schema.minimum > -SAFE ? schema.minimum : undefined;
  const max = schema.maximum !== undefined && schema.maximum < SAFE ? schema.maximum : undefined;
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}`;
  const parts: string[] = [];
  if (schema.exclusiveMinimum !== undefined && schema.exclusiveMinimum > -SAFE) parts.push(`greater than ${schema.exclusiveMinimum}`);
  if (min !== undefined) parts.push(`at least ${min}`);
  if (schema.exclusiveMaximum !== undefined && schema.exclusiveMaximum < SAFE) parts.push(`less than ${schema.exclusiveMaximum}`);
  if (max !== undefined) parts.push(`at most ${max}`);
  return parts.length > 0 ? ` ${parts.join(" and ")}` : "";
}

/** What a value of this schema looks like, for messages and help: "a whole number at most 65535". */
export function describeSchema(schema: JsonSchema): string {
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) {
    // zod's "one value or a list of them" (`type` of the events tools): said once.
    const list = alternatives.find((alternative) => alternative.items?.enum);
    const single = alternatives.find((alternative) => alternative.enum);
    if (alternatives.length === 2 && list && single && JSON.stringify(list.items!.enum) === JSON.stringify(single.enum)) {
      return `one or more of ${single.enum!.map(String).join(", ")} (comma-separated)`;
    }
    return alternatives.map(describeSchema).join(", or ");
  }
  if (schema.enum) return `one of ${schema.enum.map(String).join(", ")}`;
  const described = types(schema)
    .filter((type) => type !== "null")
    .map((type) => {
      switch (type) {
        case "integer":
          return `a whole number${bounds(schema)}`;
        case "number":
          return `a number${bounds(schema)}`;
        case "boolean":
          return "true or false";
        case "array":
          return `a comma-separated list of ${schema.items?.enum ? schema.items.enum.map(String).join(", ") : schema.items ? describeSchema(schema.items).replace(/^an? /, "") : "values"}`;
        case "object":
          return "a JSON object";
        default:
          return "text";
      }
    });
  return described.length > 0 ? described.join(" or ") : "a value";
}

type Converted = { ok: true; value: unknown } | { ok: false };
const NO: Converted = { ok: false };

function inRange(value: number, schema: JsonSchema): boolean {
  return !(
    (schema.minimum !== undefined && value < schema.minimum) ||
    (schema.maximum !== undefined && value > schema.maximum) ||
    (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) ||
    (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum)
  );
}

function convertAs(type: string, text: string, schema: JsonSchema): Converted {
  const trimmed = text.trim();
  switch (type) {
    case "integer":
      if (!/^[+-]?\d+$/.test(trimmed)) return NO;
      return inRange(Number(trimmed), schema) ? { ok: true, value: Number(trimmed) } : NO;
    case "number": {
      const value = Number(trimmed);
      return trimmed !== "" && Number.isFinite(value) && inRange(value, schema) ? { ok: true, value } : NO;
    }
    case "boolean": {
      const lower = trimmed.toLowerCase();
      if (["true", "yes", "on", "1"].includes(lower)) return { ok: true, value: true };
      if (["false", "no", "off", "0"].includes(lower)) return { ok: true, value: false };
      return NO;
    }
    case "null":
      return trimmed === "null" ? { ok: true, value: null } : NO;
    case "array": {
      const values: unknown[] = [];
      for (const item of text.split(",").map((part) => part.trim()).filter(Boolean)) {
        const converted = schema.items ? convert(item, schema.items) : { ok: true as const, value: item };
        if (!converted.ok) return NO;
        values.push(converted.value);
      }
      return values.length >= (schema.minItems ?? 0) ? { ok: true, value: values } : NO;
    }
    case "object":
      try {
        const value: unknown = JSON.parse(text);
        return typeof value === "object" && value !== null && !Array.isArray(value) ? { ok: true, value } : NO;
      } catch {
        return NO;
      }
    default:
      if (schema.minLength !== undefined && text.length < schema.minLength) return NO;
      if (schema.maxLength !== undefined && text.length > schema.maxLength) return NO;
      return { ok: true, value: text };
  }
}

/** The first reading of the text that the schema accepts (alternatives and types in the schema's order). */
function convert(text: string, schema: JsonSchema): Converted {
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) {
    for (const alternative of alternatives) {
      const converted = convert(text, alternative);
      if (converted.ok) return converted;
    }
    return NO;
  }
  const kinds = types(schema);
  // No type at all: any JSON value, else the text itself.
  if (kinds.length === 0) {
    try {
      return { ok: true, value: JSON.parse(text) };
    } catch {
      return { ok: true, value: text };
    }
  }
  for (const type of kinds) {
    const converted = convertAs(type, text, schema);
    if (converted.ok && (schema.enum === undefined || schema.enum.includes(converted.value))) return converted;
  }
  return NO;
}

/** Converts one flag's text to the parameter's type, or a UsageError naming the flag, the value and what it should be. */
export function convertValue(flag: string, text: string, schema: JsonSchema): unknown {
  const converted = convert(text, schema);
  if (!converted.ok) throw new UsageError(`${flag}: "${text}" is not ${describeSchema(schema)}`);
  return converted.value;
}

/** One line per parameter, for help and for the message about an unknown flag. */
export function describeParams(tool: ToolSchema): string[] {
  const required = new Set(tool.inputSchema.required ?? []);
  return Object.entries(properties(tool)).map(([name, schema]) => {
    const extra = [required.has(name) ? "required" : "", schema.default !== undefined ? `default ${JSON.stringify(schema.default)}` : ""].filter(Boolean);
    const what = isBooleanSchema(schema) ? "" : ` (${describeSchema(schema)})`;
    return `${flagOf(name)}${what}${schema.description ? `: ${schema.description}` : ""}${extra.length > 0 ? ` [${extra.join(", ")}]` : ""}`;
  });
}

function paramList(tool: ToolSchema): string {
  const names = Object.keys(properties(tool));
  return names.length > 0 ? `${tool.name} takes ${names.map(flagOf).join(", ")}` : `${tool.name} takes no parameters`;
}

function takesValue(word: string | undefined): word is string {
  return word !== undefined && !word.startsWith("--");
}

/**
 * A tool's arguments from flags: `--param value`, `--param=value` (kebab or snake case; booleans
 * need no value, `--no-param` is false), `--arg key=value` (repeatable) and `--args-json '{…}'`;
 * later ones win. Text is converted to the parameter's JSON Schema type. Unknown flags, bad values
 * and missing required parameters are UsageErrors that name them.
 */
export function parseToolArgs(tool: ToolSchema, argv: readonly string[]): Record<string, unknown> {
  const props = properties(tool);
  const args: Record<string, unknown> = {};
  const resolve = (flag: string, shown: string): string => {
    const name = paramOf(tool, flag);
    if (name === undefined) throw new UsageError(`unknown option ${shown} for ${tool.name}; ${paramList(tool)}`);
    return name;
  };
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (!word.startsWith("--") || word === "--") {
      throw new UsageError(`unexpected argument "${word}" (parameters are flags: --name value); ${paramList(tool)}`);
    }
    const eq = word.indexOf("=");
    const flag = eq === -1 ? word.slice(2) : word.slice(2, eq);
    let inline = eq === -1 ? undefined : word.slice(eq + 1);
    if (flag === "args-json" || flag === "args_json") {
      const text = inline ?? (takesValue(argv[i + 1]) ? argv[++i]! : undefined);
      if (text === undefined) throw new UsageError("--args-json needs a JSON object, e.g. --args-json '{\"pid\": 42}'");
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        throw new UsageError(`--args-json: not JSON (${(error as Error).message}): ${text}`);
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError(`--args-json: ${text} is not a JSON object`);
      for (const [key, value] of Object.entries(parsed)) args[resolve(key, `"${key}" in --args-json`)] = value;
      continue;
    }
    if (flag === "arg") {
      const pair = inline ?? (takesValue(argv[i + 1]) ? argv[++i]! : undefined);
      const split = pair?.indexOf("=") ?? -1;
      if (pair === undefined || split <= 0) throw new UsageError(`--arg needs key=value, e.g. --arg pid=42; ${paramList(tool)}`);
      const name = resolve(pair.slice(0, split), `--arg ${pair.slice(0, split)}`);
      args[name] = convertValue(`--arg ${pair.slice(0, split)}`, pair.slice(split + 1), props[name]!);
      continue;
    }
    const negated = flag.startsWith("no-") && paramOf(tool, flag) === undefined ? paramOf(tool, flag.slice(3)) : undefined;
    if (negated !== undefined && isBooleanSchema(props[negated]!)) {
      if (inline !== undefined) throw new UsageError(`--${flag} takes no value`);
      args[negated] = false;
      continue;
    }
    const name = resolve(flag, `--${flag}`);
    const schema = props[name]!;
    if (isBooleanSchema(schema) && inline === undefined) {
      // `--listening` alone is true; `--listening false` reads the next word only when it is a boolean.
      const next = argv[i + 1];
      inline = next !== undefined && /^(true|false|yes|no|on|off|1|0)$/i.test(next) ? argv[++i]! : "true";
    }
    const text = inline ?? (takesValue(argv[i + 1]) ? argv[++i]! : undefined);
    if (text === undefined) throw new UsageError(`--${flag} needs a value: ${describeSchema(schema)}`);
    args[name] = convertValue(`--${flag}`, text, schema);
  }
  const missing = (tool.inputSchema.required ?? []).filter((name) => !(name in args));
  if (missing.length > 0) throw new UsageError(`${tool.name} needs ${missing.map(flagOf).join(", ")}; ${paramList(tool)}`);
  return args;
}

export type FlagSpec = Record<string, "string" | "boolean">;

/**
 * Takes the client's own flags (--server, --json, …) out of a command line and leaves the rest (the
 * tool's flags) in order. The client's flags win over a tool parameter of the same name, which
 * stays reachable with --arg.
 */
export function splitFlags(argv: readonly string[], spec: FlagSpec): { flags: Record<string, string | boolean>; rest: string[] } {
  const flags: Record<string, string | boolean> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    const eq = word.indexOf("=");
    const name = word.startsWith("--") ? word.slice(2, eq === -1 ? undefined : eq) : "";
    const kind = spec[name];
    if (kind === undefined) {
      rest.push(word);
      // A tool flag's value is the tool's business, even when it looks like one of ours.
      if (word.startsWith("--") && eq === -1 && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith("--")) rest.push(argv[++i]!);
      continue;
    }
    if (kind === "boolean") {
      flags[name] = eq === -1 ? true : !/^(false|no|off|0)$/i.test(word.slice(eq + 1));
      continue;
    }
    const value = eq !== -1 ? word.slice(eq + 1) : argv[i + 1];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (eq === -1) i++;
    flags[name] = value;
  }
  return { flags, rest };
}

/**
 * Splits a shell line into words like a POSIX shell does for the simple cases: white space
 * separates, '…' keeps everything, "…" keeps everything but \" and \\, a backslash escapes one character.
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let started = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < line.length; i++) {
    const char = line[i]!;
    if (quote === "'") {
      if (char === "'") quote = null;
      else word += char;
    } else if (quote === '"') {
      if (char === '"') quote = null;
      else if (char === "\\" && (line[i + 1] === '"' || line[i + 1] === "\\")) word += line[++i];
      else word += char;
    } else if (char === "'" || char === '"') {
      quote = char;
      started = true;
    } else if (char === "\\" && i + 1 < line.length) {
      word += line[++i];
      started = true;
    } else if (/\s/.test(char)) {
      if (started) words.push(word);
      word = "";
      started = false;
    } else {
      word += char;
      started = true;
    }
  }
  if (quote !== null) throw new UsageError(`unterminated ${quote} quote`);
  if (started) words.push(word);
  return words;
}
