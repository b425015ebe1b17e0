/**
 * The CUDA build on a machine without a GPU (CI and the dev VM): the library exports every function
 * of nanorag.h, reports "no device" with the reason and the cuBLAS search spelled out, and refuses to
 * create a model with a readable error instead of crashing. Skips when the library was not built
 * (`make -C native cuda`; .ci/run builds it before the tests). The GPU itself: native/gpu-check.sh.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const native = join(import.meta.dir, "..", "native");
const lib = join(native, "build", "libnanorag_cuda.so");
const built = existsSync(lib);

/* runs a few FFI calls in a child process, so each case gets its own environment and library state */
function probe(env: Record<string, string>): { count: number; why: string; modelError: string } {
  const code = `
    import { dlopen, CString } from "bun:ffi";
    const L = dlopen(${JSON.stringify(lib)}, {
      nr_device_count: { args: ["ptr", "i32"], returns: "i32" },
      nr_model_new: { args: ["ptr", "i32", "ptr", "i32", "ptr", "u32"], returns: "ptr" },
      nr_last_error: { args: [], returns: "cstring" },
    }).symbols;
    const why = new Uint8Array(8192);
    const count = L.nr_device_count(why, why.length);
    const ic = new Int32Array([97, 2, 64, 4, 4, 16, 4, 2, 0, 0, 128, 256]);
    const fc = new Float32Array([10000, 15, 1e-6]);
    const m = L.nr_model_new(ic, 12, fc, 3, Buffer.from("TT\\0"), 1);
    console.log(JSON.stringify({ count, why: new TextDecoder().decode(why.subarray(0, why.indexOf(0))),
      modelError: m ? "" : String(L.nr_last_error()) }));`;
  const r = Bun.spawnSync([process.execPath, "-e", code], { env: { ...process.env, ...env } });
  expect(r.exitCode).toBe(0);
  return JSON.parse(r.stdout.toString().trim().split("\n").pop()!);
}

const noGpu = built && probe({}).count === 0;

describe.skipIf(!built)("CUDA library (built, no GPU needed)", () => {
  test("exports every function declared in nanorag.h", () => {
    const declared = [...readFileSync(join(native, "include", "nanorag.h"), "utf8").matchAll(/\b(nr_[a-z0-9_]+)\(/g)]
      .map((m) => m[1]);
    const nm = Bun.spawnSync(["nm", "-D", "--defined-only", lib]).stdout.toString();
    const exported = new Set(nm.split("\n").map((l) => l.trim().split(/\s+/)[2]));
    expect(declared.length).toBeGreaterThan(40);
    expect(declared.filter((f) => !exported.has(f))).toEqual([]);
  });

  test.skipIf(!noGpu)("without a GPU: no device, with the reason and the cuBLAS search named", () => {
    const r = probe({ NANORAG_CUBLAS: "/nonexistent/libcublas.so.13" });
    expect(r.count).toBe(0);
    expect(r.why).toMatch(/^no CUDA device: /);
    expect(r.why).toContain("NANORAG_CUBLAS=/nonexistent/libcublas.so.13");
    expect(r.why).toContain("libcublas.so.12 on the library path");
    expect(r.why).toContain("site-packages/nvidia/cu*/lib/libcublas.so.*");
    expect(r.modelError).toMatch(/^no CUDA device: /);
  });

  test.skipIf(!noGpu)("finds cuBLAS in a Python environment's site-packages (python3's sys.path)", () => {
    // a stand-in library (libm) where the nvidia-cublas wheel puts libcublas: found, so no "not found"
    const site = join(mkdtempSync(join(tmpdir(), "nr-site-")), "lib", "python3", "site-packages");
    const dir = join(site, "nvidia", "cublas", "lib");
    mkdirSync(dir, { recursive: true });
    symlinkSync("/lib/x86_64-linux-gnu/libm.so.6", join(dir, "libcublas.so.12"));
    const found = probe({ PYTHONPATH: site });
    expect(found.why).toMatch(/^no CUDA device: /);
    expect(found.why).not.toContain("cuBLAS not found");
    expect(probe({}).why).toContain("the site-packages of python3's sys.path");
  });
});
