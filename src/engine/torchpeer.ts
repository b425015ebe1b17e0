/** Bridge to bench/torch_peer.py (PyTorch on the CPU, /usr/bin/python3): gradient parity and speed peer. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readSafetensors, writeSafetensors } from "./checkpoint.ts";
import type { Model } from "./model.ts";

export const PYTHON = process.env.NANORAG_PYTHON ?? "/usr/bin/python3";
export const PEER = join(import.meta.dir, "../../bench/torch_peer.py");

let avail: boolean | undefined;
/** True when `import torch` works under PYTHON. */
export function torchAvailable(): boolean {
  if (avail === undefined) {
    try {
      avail = Bun.spawnSync([PYTHON, "-c", "import torch, numpy"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
    } catch {
      avail = false;
    }
  }
  return avail;
}

/** Write config.json, model.safetensors and batch.safetensors for the peer. */
export function writePeerDir(
  model: Model,
  dir: string,
  b: { tokens: Int32Array; targets: Int32Array; weights?: Float32Array; B: number; T: number; scale: number },
): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model_config: model.config }));
  const P = model.params;
  writeSafetensors(
    join(dir, "model.safetensors"),
    model.tensors().map((t) => [t.name, { dtype: "F32", shape: t.shape, data: P.subarray(t.offset, t.offset + t.numel) }]),
  );
  const { B, T } = b;
  writeSafetensors(join(dir, "batch.safetensors"), [
    ["tokens", { dtype: "F32", shape: [B, T], data: Float32Array.from(b.tokens) }],
    ["targets", { dtype: "F32", shape: [B, T], data: Float32Array.from(b.targets) }],
    ["weights", { dtype: "F32", shape: [B, T], data: b.weights ?? new Float32Array(B * T).fill(1) }],
    ["scale", { dtype: "F32", shape: [1], data: new Float32Array([b.scale]) }],
  ]);
}

export function runPeer(args: string[], threads = 2): unknown {
  const p = Bun.spawnSync([PYTHON, PEER, ...args], {
    env: { ...process.env, NANORAG_PEER_THREADS: String(threads), OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) },
    stdout: "pipe",
    stderr: "pipe",
  });
  if (p.exitCode !== 0) throw new Error(`torch peer failed: ${p.stderr.toString().slice(-2000)}`);
  return JSON.parse(p.stdout.toString().trim().split("\n").pop() ?? "null");
}

/** Per-tensor comparison of engine gradients with the peer's: max over tensors of |a-b|_inf / |b|_inf. */
export function compareGrads(model: Model, dir: string): { worst: number; worstName: string; perTensor: Record<string, number> } {
  const { tensors } = readSafetensors(join(dir, "grads.safetensors"));
  const G = model.grads;
  let worst = 0;
  let worstName = "";
  const perTensor: Record<string, number> = {};
  for (const t of model.tensors()) {
    const ref = tensors.get(t.name)?.data;
    if (!ref) throw new Error(`peer gave no gradient for ${t.name}`);
    let dmax = 0;
    let rmax = 0;
    for (let i = 0; i < t.numel; i++) {
      dmax = Math.max(dmax, Math.abs(G[t.offset + i] - ref[i]));
      rmax = Math.max(rmax, Math.abs(ref[i]));
    }
    const rel = dmax / Math.max(rmax, 1e-12);
    perTensor[t.name] = rel;
    if (rel > worst) {
      worst = rel;
      worstName = t.name;
    }
  }
  return { worst, worstName, perTensor };
}
