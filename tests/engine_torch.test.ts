/** Gradient parity with PyTorch autograd on the same weights and batch (skips without torch). */
import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Model, setThreads } from "../src/engine/index.ts";
import { compareGrads, runPeer, torchAvailable, writePeerDir } from "../src/engine/torchpeer.ts";
import { tempDir } from "./helpers.ts";

const tmp = tempDir("nanorag-torch-");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test.skipIf(!torchAvailable())("gradients match PyTorch autograd (T, M, hybrid with GQA and Mamba MLP)", () => {
  setThreads(2);
  const m = Model.create(
    { vocab_size: 53, n_embd: 32, n_head: 4, n_kv_head: 2, block_pattern: "TMT", sequence_len: 64, mamba_d_state: 8, mamba_use_mlp: true },
    3,
  );
  let s = 12345;
  const r = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296);
  const P = m.params;
  for (let i = 0; i < P.length; i++) P[i] += 0.2 * (r() - 0.5);
  const B = 2, T = 24, n = B * T;
  const tokens = new Int32Array(n).map(() => Math.floor(r() * 53));
  const targets = new Int32Array(n).map(() => Math.floor(r() * 53));
  targets[5] = -1;
  const weights = new Float32Array(n).map(() => r() * 2 - 0.5);
  let ws = 0;
  for (let i = 0; i < n; i++) if (targets[i] >= 0) ws += weights[i];
  const scale = 1 / ws;
  m.zeroGrad();
  const res = m.step(tokens, targets, B, T, { weights, gradScale: scale });
  const dir = join(tmp, "g");
  writePeerDir(m, dir, { tokens, targets, weights, B, T, scale });
  const peer = runPeer(["grad", dir], 1) as { loss_sum: number; weight_sum: number };
  const cmp = compareGrads(m, dir);
  console.log(`torch parity: loss ${res.lossSum.toFixed(6)} vs ${peer.loss_sum.toFixed(6)}; worst per-tensor max|diff|/max|ref| ${cmp.worst.toExponential(2)} (${cmp.worstName})`);
  expect(Math.abs(res.lossSum - peer.loss_sum)).toBeLessThan(1e-4 * Math.abs(peer.loss_sum) + 1e-5);
  expect(cmp.worst).toBeLessThan(1e-3);
  m.free();
  setThreads(1);
}, 120_000);
