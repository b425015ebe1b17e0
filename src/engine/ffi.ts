/**
 * bun:ffi bindings to the native engine: native/build/libnanorag.so (CPU), or the CUDA build
 * (libnanorag_cuda.so) when device.ts selects it. The `with { type: "file" }` import makes
 * `bun build --compile` embed the CPU library; dlopen reads the embedded path directly. The CUDA
 * library is never imported that way (it may not exist at build time): it is found at run time.
 */
import { dlopen } from "bun:ffi";
import libPath from "../../native/build/libnanorag.so" with { type: "file" };
import { UserError } from "../errors.ts";

const symbols = {
  nr_version: { args: [], returns: "cstring" },
  nr_last_error: { args: [], returns: "cstring" },
  nr_engine_info: { args: [], returns: "cstring" },
  nr_set_threads: { args: ["i32"], returns: "i32" },
  nr_get_threads: { args: [], returns: "i32" },
  nr_model_new: { args: ["ptr", "i32", "ptr", "i32", "ptr", "u32"], returns: "ptr" },
  nr_model_free: { args: ["ptr"], returns: "void" },
  nr_model_num_params: { args: ["ptr"], returns: "i64" },
  nr_model_params: { args: ["ptr"], returns: "ptr" },
  nr_model_grads: { args: ["ptr"], returns: "ptr" },
  nr_model_opt_m: { args: ["ptr"], returns: "ptr" },
  nr_model_opt_v: { args: ["ptr"], returns: "ptr" },
  nr_model_opt_step: { args: ["ptr"], returns: "i64" },
  nr_model_set_opt_step: { args: ["ptr", "i64"], returns: "void" },
  nr_model_num_tensors: { args: ["ptr"], returns: "i32" },
  nr_model_tensor_name: { args: ["ptr", "i32"], returns: "cstring" },
  nr_model_tensor_ndim: { args: ["ptr", "i32"], returns: "i32" },
  nr_model_tensor_dim: { args: ["ptr", "i32", "i32"], returns: "i32" },
  nr_model_tensor_offset: { args: ["ptr", "i32"], returns: "i64" },
  nr_model_tensor_numel: { args: ["ptr", "i32"], returns: "i64" },
  nr_model_tensor_group: { args: ["ptr", "i32"], returns: "i32" },
  nr_step: { args: ["ptr", "ptr", "ptr", "ptr", "i32", "i32", "f32", "ptr"], returns: "i32" },
  nr_eval: { args: ["ptr", "ptr", "ptr", "ptr", "i32", "i32", "ptr", "ptr"], returns: "i32" },
  nr_logits: { args: ["ptr", "ptr", "i32", "i32", "ptr"], returns: "i32" },
  nr_embed: { args: ["ptr", "ptr", "ptr", "i32", "i32", "ptr"], returns: "i32" },
  nr_zero_grad: { args: ["ptr"], returns: "void" },
  nr_model_act_bytes: { args: ["ptr"], returns: "i64" },
  nr_set_recompute: { args: ["ptr", "i32"], returns: "i32" },
  nr_sgemm: { args: ["i32", "i32", "i32", "i32", "i32", "ptr", "i32", "ptr", "i32", "ptr", "i32", "i32"], returns: "void" },
  nr_optim_step: { args: ["ptr", "ptr", "i32", "ptr"], returns: "i32" },
  nr_state_new: { args: ["ptr", "i32", "i32"], returns: "ptr" },
  nr_state_free: { args: ["ptr"], returns: "void" },
  nr_state_reset: { args: ["ptr"], returns: "void" },
  nr_state_pos: { args: ["ptr"], returns: "i32" },
  nr_state_bytes: { args: ["ptr"], returns: "i64" },
  nr_state_forward: { args: ["ptr", "ptr", "ptr", "i32", "ptr", "i32"], returns: "i32" },
  nr_sample: { args: ["ptr", "i32", "i32", "f32", "i32", "f32", "ptr", "ptr"], returns: "i32" },
  nr_device_count: { args: ["ptr", "i32"], returns: "i32" },
  nr_set_device: { args: ["i32"], returns: "i32" },
  nr_model_download: { args: ["ptr"], returns: "i32" },
  nr_model_upload: { args: ["ptr"], returns: "i32" },
  nr_comm_unique_id: { args: ["ptr"], returns: "i32" },
  nr_comm_init: { args: ["ptr", "i32", "i32"], returns: "i32" },
  nr_comm_allreduce_grads: { args: ["ptr"], returns: "i32" },
  nr_comm_free: { args: [], returns: "void" },
} as const;

export type Engine = ReturnType<typeof dlopen<typeof symbols>>["symbols"];
/** Which library is loaded: "cpu" (the embedded CPU build) or "cuda". */
export type EngineKind = "cpu" | "cuda";

export const ABI_VERSION = "0.2.0";

let lib: Engine | null = null;
let loaded: { kind: EngineKind; path: string } | null = null;

/** Opens a library with the full symbol table and checks its version; throws a UserError saying why not. */
export function openEngine(path: string): Engine {
  let l: Engine;
  try {
    l = dlopen(path, symbols).symbols;
  } catch (e) {
    throw new UserError(`cannot load the native engine (${path}): ${(e as Error).message}. Build it with \`make -C native\`.`);
  }
  const ver = String(l.nr_version());
  if (ver !== ABI_VERSION) {
    throw new UserError(`native engine ${path} is version ${ver}, the bindings expect ${ABI_VERSION}; rebuild with \`make -C native\``);
  }
  return l;
}

/** Makes `engine` (opened from `path`) the one every later call uses; only before the first call, or the same library again. */
export function useEngine(kind: EngineKind, path: string, engine: Engine): void {
  if (loaded && loaded.path !== path) throw new UserError(`the ${loaded.kind} engine (${loaded.path}) is already in use; the device is chosen once per process`);
  lib = engine;
  loaded = { kind, path };
}

/** The CPU library's path (embedded in the compiled binary). */
export const CPU_LIBRARY: string = libPath;

/** The loaded library (the CPU build unless useEngine chose another first; never closed, see toolchain.md on dlclose). */
export function native(): Engine {
  if (!lib) useEngine("cpu", libPath, openEngine(libPath));
  return lib!;
}

/** The engine's last error message. */
export function lastError(): string {
  return String(native().nr_last_error());
}

/** Set the engine's thread count (>= 1); returns the count in use. */
export function setThreads(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new UserError(`threads must be a positive integer, got ${n}`);
  return native().nr_set_threads(n);
}

export function getThreads(): number {
  return native().nr_get_threads();
}

/** "nanorag 0.2.0 cpu avx512 threads=2": version, kernels in use, thread count. */
export function engineInfo(): string {
  const L = native();
  return `nanorag ${L.nr_version()} ${L.nr_engine_info()}`;
}
