/**
 * `--device auto|cpu|cuda`: which engine library this process uses. The CUDA build
 * (libnanorag_cuda.so, from `make -C native cuda`) is looked up at run time, never embedded, because it
 * may not exist when the binary is built: $NANORAG_CUDA_LIB, else next to the running executable, else
 * native/build beside the sources. auto takes it when it loads and reports a device, and otherwise says
 * on stderr why it stays on the CPU; cuda refuses to run without it.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import { CPU_LIBRARY, type Engine, type EngineKind, lastError, native, openEngine, useEngine } from "./ffi.ts";

export const DEVICE_FLAGS = ["auto", "cpu", "cuda"] as const;
export type DeviceFlag = (typeof DEVICE_FLAGS)[number];

const CUDA_LIBRARY = "libnanorag_cuda.so";

export interface Device {
  kind: EngineKind;
  /** the device this process drives (the local rank's GPU; 0 on the CPU) */
  index: number;
  /** devices the library reports */
  count: number;
  library: string;
}

/** Where the CUDA library is looked for, in order. */
export function cudaLibraryCandidates(): string[] {
  if (process.env.NANORAG_CUDA_LIB) return [resolve(process.env.NANORAG_CUDA_LIB)];
  const places = [join(dirname(process.execPath), CUDA_LIBRARY), join(import.meta.dir, "../../native/build", CUDA_LIBRARY)];
  return [...new Set(places)];
}

/** `detail`: the rest of the library's reason (every place cuBLAS was searched), for --device cuda's error. */
type Probe = { ok: true; path: string; engine: Engine; count: number } | { ok: false; why: string; detail?: string };

/** Loads the CUDA library and asks it for devices, without making it the engine in use. */
function probeCuda(): Probe {
  const searched = cudaLibraryCandidates();
  const path = searched.find((p) => existsSync(p));
  if (!path) return { ok: false, why: `no ${CUDA_LIBRARY} (searched ${searched.join(", ")}; build it with \`make -C native cuda\`)` };
  let engine: Engine;
  try {
    engine = openEngine(path);
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
  const why = Buffer.alloc(1024);
  const count = engine.nr_device_count(why, why.length);
  if (count <= 0) {
    const [first, ...rest] = why.toString("utf8", 0, Math.max(0, why.indexOf(0))).split("; ");
    return { ok: false, why: `${path} found no usable CUDA device: ${first}`, detail: rest.join("; ") || undefined };
  }
  return { ok: true, path, engine, count };
}

function cpuDevice(): Device {
  native();
  return { kind: "cpu", index: 0, count: 1, library: CPU_LIBRARY };
}

/**
 * Chooses the engine for this process (call before creating any model). `index` is the GPU a
 * multi-process worker drives (its local rank); on the CPU every worker uses the host.
 */
export function selectDevice(flag: DeviceFlag = "auto", index = 0): Device {
  if (!DEVICE_FLAGS.includes(flag)) throw new UserError(`--device must be one of ${DEVICE_FLAGS.join(", ")}, got "${flag}"`);
  if (flag === "cpu") return cpuDevice();
  const p = probeCuda();
  if (!p.ok) {
    if (flag === "cuda") throw new UserError(`--device cuda: ${p.why}${p.detail ? `; ${p.detail}` : ""}`);
    // On a machine without a GPU the list of cuBLAS places would be noise on every run: auto names the cause.
    log.info(`--device auto: running on the CPU because ${p.why}${p.detail ? " (--device cuda says more)" : ""}`);
    return cpuDevice();
  }
  if (index >= p.count) throw new UserError(`--device ${flag}: this process needs GPU ${index} but ${p.path} sees ${p.count}`);
  useEngine("cuda", p.path, p.engine);
  if (p.engine.nr_set_device(index) !== 0) throw new UserError(`--device ${flag}: cannot select GPU ${index}: ${lastError()}`);
  log.info(`device: cuda:${index} of ${p.count} (${p.path})`);
  return { kind: "cuda", index, count: p.count, library: p.path };
}
