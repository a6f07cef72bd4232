// The bpf() system call, for reading a running probe's maps straight from the kernel: the
// connection tracker's counts must not go through bpftrace's ring buffer, which loses records when
// its reader falls behind. bun:ffi calls libc's syscall(); it is loaded on first use only (start-up
// cost). Needs CAP_SYS_ADMIN (BPF_MAP_GET_FD_BY_ID), as the probes need root anyway.
import { readdirSync, readFileSync } from "node:fs";

// Commands of include/uapi/linux/bpf.h (stable numbers).
const BPF_MAP_LOOKUP_ELEM = 1;
const BPF_MAP_DELETE_ELEM = 3;
const BPF_MAP_GET_NEXT_KEY = 4;
const BPF_MAP_GET_FD_BY_ID = 14;
const BPF_OBJ_GET_INFO_BY_FD = 15;
/** Per-CPU map types: a value per possible CPU, each rounded up to 8 bytes. */
const PERCPU_TYPES = new Set([5 /* PERCPU_HASH */, 6 /* PERCPU_ARRAY */, 10 /* LRU_PERCPU_HASH */]);
const ENOENT = 2;

/** bpf_attr is a union of up to ~150 bytes; unused bytes must be zero. */
const ATTR_SIZE = 128;

type Ffi = typeof import("bun:ffi");
interface Libc {
  ffi: Ffi;
  syscall: (nr: number, cmd: number, attr: number, size: number) => number | bigint;
  errno: () => number;
  close: (fd: number) => number;
}

let libc: Libc | null = null;

function load(): Libc {
  if (libc) return libc;
  // A require, not an import: only a process that reads maps pays for loading FFI.
  const ffi = require("bun:ffi") as Ffi;
  const { symbols } = ffi.dlopen("libc.so.6", {
    syscall: { args: [ffi.FFIType.i64, ffi.FFIType.i64, ffi.FFIType.ptr, ffi.FFIType.u32], returns: ffi.FFIType.i64 },
    __errno_location: { args: [], returns: ffi.FFIType.ptr },
    close: { args: [ffi.FFIType.i32], returns: ffi.FFIType.i32 },
  });
  libc = {
    ffi,
    syscall: symbols.syscall as unknown as Libc["syscall"],
    errno: () => ffi.read.i32(symbols.__errno_location()!, 0),
    close: symbols.close as unknown as Libc["close"],
  };
  return libc;
}

/** __NR_bpf: x86_64 321, arm64 (the generic table) 280. */
const NR_BPF = process.arch === "arm64" ? 280 : 321;

export class BpfError extends Error {
  constructor(
    message: string,
    readonly errno: number,
  ) {
    super(message);
  }
}

function bpf(cmd: number, attr: Uint8Array, what: string): number {
  const c = load();
  const result = Number(c.syscall(NR_BPF, cmd, c.ffi.ptr(attr) as unknown as number, attr.length));
  if (result < 0) {
    const errno = c.errno();
    throw new BpfError(`bpf(${what}) failed: errno ${errno}${errno === 1 ? " (EPERM: needs root or CAP_SYS_ADMIN)" : ""}`, errno);
  }
  return result;
}

function attr(): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(ATTR_SIZE);
  return { bytes, view: new DataView(bytes.buffer) };
}

const address = (bytes: Uint8Array) => BigInt(load().ffi.ptr(bytes));

export interface MapInfo {
  id: number;
  type: number;
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

/** The ids of the BPF maps a process holds open (its fds whose fdinfo has a map_id). */
export function mapIdsOfProcess(pid: number): number[] {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8");
    } catch {
      continue; // closed in between
    }
    const id = /^map_id:\s*(\d+)/m.exec(text);
    if (id) ids.add(Number(id[1]));
  }
  return [...ids];
}

const CPUS = (() => {
  // "0-3", "0,2-5": the highest possible CPU + 1 is what per-CPU values are sized by.
  try {
    const text = readFileSync("/sys/devices/system/cpu/possible", "utf8").trim();
    return Math.max(...text.split(",").map((part) => Number(part.split("-").pop()))) + 1;
  } catch {
    return navigator.hardwareConcurrency || 1;
  }
})();

/** An open BPF map: its keys, values (summed over CPUs for per-CPU maps of u64) and deletes. */
export class BpfMap {
  private constructor(
    private fd: number,
    readonly info: MapInfo,
  ) {}

  static open(id: number): BpfMap {
    const get = attr();
    get.view.setUint32(0, id, true);
    const fd = bpf(BPF_MAP_GET_FD_BY_ID, get.bytes, `MAP_GET_FD_BY_ID ${id}`);
    try {
      // struct bpf_map_info: type, id, key_size, value_size, max_entries, map_flags, name[16].
      const info = new Uint8Array(96);
      const request = attr();
      request.view.setUint32(0, fd, true);
      request.view.setUint32(4, info.length, true);
      request.view.setBigUint64(8, address(info), true);
      bpf(BPF_OBJ_GET_INFO_BY_FD, request.bytes, `OBJ_GET_INFO_BY_FD map ${id}`);
      const view = new DataView(info.buffer);
      const name = new TextDecoder().decode(info.subarray(24, 40)).replace(/\0[\s\S]*$/, "");
      return new BpfMap(fd, {
        id,
        type: view.getUint32(0, true),
        keySize: view.getUint32(8, true),
        valueSize: view.getUint32(12, true),
        maxEntries: view.getUint32(16, true),
        name,
      });
    } catch (error) {
      load().close(fd);
      throw error;
    }
  }

  /** Every key now in the map (a snapshot: the map may change meanwhile). */
  keys(limit = this.info.maxEntries): Uint8Array[] {
    const keys: Uint8Array[] = [];
    let key: Uint8Array | null = null;
    while (keys.length < limit) {
      const next = new Uint8Array(this.info.keySize);
      const request = attr();
      request.view.setUint32(0, this.fd, true);
      request.view.setBigUint64(8, key ? address(key) : 0n, true);
      request.view.setBigUint64(16, address(next), true);
      try {
        bpf(BPF_MAP_GET_NEXT_KEY, request.bytes, `MAP_GET_NEXT_KEY ${this.info.name}`);
      } catch (error) {
        if (error instanceof BpfError && error.errno === ENOENT) break; // the last key
        throw error;
      }
      keys.push(next);
      key = next;
    }
    return keys;
  }

  /** The value of a key as one u64 (a per-CPU map's values summed), or null when it is gone. */
  sum(key: Uint8Array): bigint | null {
    const percpu = PERCPU_TYPES.has(this.info.type);
    const stride = Math.ceil(this.info.valueSize / 8) * 8;
    const value = new Uint8Array(percpu ? stride * CPUS : this.info.valueSize);
    const request = attr();
    request.view.setUint32(0, this.fd, true);
    request.view.setBigUint64(8, address(key), true);
    request.view.setBigUint64(16, address(value), true);
    try {
      bpf(BPF_MAP_LOOKUP_ELEM, request.bytes, `MAP_LOOKUP_ELEM ${this.info.name}`);
    } catch (error) {
      if (error instanceof BpfError && error.errno === ENOENT) return null;
      throw error;
    }
    const view = new DataView(value.buffer);
    if (!percpu) return view.getBigUint64(0, true);
    let total = 0n;
    for (let cpu = 0; cpu < CPUS; cpu++) total += view.getBigUint64(cpu * stride, true);
    return total;
  }

  /** Deletes a key; false when it was already gone. */
  delete(key: Uint8Array): boolean {
    const request = attr();
    request.view.setUint32(0, this.fd, true);
    request.view.setBigUint64(8, address(key), true);
    try {
      bpf(BPF_MAP_DELETE_ELEM, request.bytes, `MAP_DELETE_ELEM ${this.info.name}`);
      return true;
    } catch (error) {
      if (error instanceof BpfError && error.errno === ENOENT) return false;
      throw error;
    }
  }

  close(): void {
    if (this.fd >= 0) load().close(this.fd);
    this.fd = -1;
  }
}

/** The maps a process holds, by name (bpftrace names @x "AT_x"), opened; the caller closes them. */
export function openMapsOfProcess(pid: number, names: readonly string[]): Map<string, BpfMap> {
  const found = new Map<string, BpfMap>();
  for (const id of mapIdsOfProcess(pid)) {
    const map = BpfMap.open(id);
    if (names.includes(map.info.name) && !found.has(map.info.name)) found.set(map.info.name, map);
    else map.close();
  }
  return found;
}
