/** The tokenizer's native hot loops (native/cpu/bpe.c), loaded over bun:ffi on first use. */
import { dlopen, FFIType } from "bun:ffi";
import { existsSync } from "node:fs";
import { UserError } from "../errors.ts";
// @ts-ignore -- a file import: Bun gives its path (embedded in the compiled binary)
import libPath from "../../native/build/libnanorag.so" with { type: "file" };

const symbols = {
  nr_bpe_train: {
    args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.i64, FFIType.i32, FFIType.ptr],
    returns: FFIType.i32,
  },
  nr_bpe_new: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.i32], returns: FFIType.ptr },
  nr_bpe_free: { args: [FFIType.ptr], returns: FFIType.void },
  nr_bpe_encode: { args: [FFIType.ptr, FFIType.ptr, FFIType.i64, FFIType.ptr, FFIType.i64], returns: FFIType.i64 },
  nr_bpe_split: { args: [FFIType.ptr, FFIType.ptr, FFIType.i64, FFIType.ptr], returns: FFIType.i64 },
  nr_bpe_counter_new: { args: [FFIType.i32], returns: FFIType.ptr },
  nr_bpe_counter_add: { args: [FFIType.ptr, FFIType.ptr, FFIType.i64, FFIType.i32], returns: FFIType.i32 },
  nr_bpe_counter_unique: { args: [FFIType.ptr], returns: FFIType.i64 },
  nr_bpe_counter_train: { args: [FFIType.ptr, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  nr_bpe_counter_free: { args: [FFIType.ptr], returns: FFIType.void },
} as const;

type Lib = ReturnType<typeof dlopen<typeof symbols>>["symbols"];
let lib: Lib | null = null;

export function bpeNative(): Lib {
  if (lib) return lib;
  const path = libPath as string;
  if (!path.startsWith("/$bunfs/") && !existsSync(path)) {
    throw new UserError(`Native library ${path} is missing: build it with \`make -C native\``);
  }
  lib = dlopen(path, symbols).symbols;
  return lib;
}
