// GET /health and the status of background work (the monitor, probes) that later parts register.
import { VERSION } from "../version.ts";

export type BackgroundStatus = () => Record<string, unknown>;
const background = new Map<string, BackgroundStatus>();
const startedAt = Date.now();

/** Background work reports its state here (name → a function returning a JSON-able status). */
export function registerBackground(name: string, status: BackgroundStatus): () => void {
  background.set(name, status);
  return () => background.delete(name);
}

export function health(extra: Record<string, unknown> = {}) {
  return {
    status: "ok",
    name: "ipcscope",
    version: VERSION,
    uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
    ...extra,
    background: Object.fromEntries([...background].map(([name, status]) => [name, status()])),
  };
}
