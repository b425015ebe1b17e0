/**
 * The exact-KNN scan kernel (native/cpu/knn.c) over bun:ffi. Bound apart from the engine's bindings
 * (src/engine/ffi.ts): search always runs on the CPU library, whichever device the engine uses.
 */
import { dlopen, FFIType } from "bun:ffi";
import { existsSync } from "node:fs";
import { UserError } from "../errors.ts";
// @ts-ignore -- a file import: Bun gives its path (embedded in the compiled binary)
import libPath from "../../native/build/libnanorag.so" with { type: "file" };

const symbols = {
  nr_knn: {
    args: [FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i64, FFIType.ptr, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr],
    returns: FFIType.i32,
  },
  nr_last_error: { args: [], returns: FFIType.cstring },
} as const;

let lib: ReturnType<typeof dlopen<typeof symbols>>["symbols"] | null = null;

function knnNative() {
  if (lib) return lib;
  const path = libPath as string;
  if (!path.startsWith("/$bunfs/") && !existsSync(path)) throw new UserError(`Native library ${path} is missing: build it with \`make -C native\``);
  lib = dlopen(path, symbols).symbols;
  return lib;
}

/**
 * The k nearest of `n` row-major vectors (or of the listed `rows` only) to `query` by squared L2,
 * nearest first, ties by lower row, on up to `threads` threads: row indices and squared distances.
 */
export function knn(vectors: Float32Array, dim: number, rows: Int32Array | null, n: number, query: Float32Array, k: number, threads: number): { rows: Int32Array; distance2: Float32Array } {
  const outRows = new Int32Array(Math.max(1, k));
  const outDist = new Float32Array(Math.max(1, k));
  const got = k > 0 && n > 0 ? knnNative().nr_knn(vectors, dim, rows, n, query, k, threads, outRows, outDist) : 0;
  if (got < 0) throw new Error(`nr_knn: ${knnNative().nr_last_error()}`);
  return { rows: outRows.subarray(0, got), distance2: outDist.subarray(0, got) };
}
