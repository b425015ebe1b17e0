/**
 * Engine benchmark (issue 5): GEMM vs numpy, training tokens/s for a ~0.5M and a ~10M model (all-T,
 * all-M, hybrid), the same models in PyTorch (speed and gradient parity), forward time and memory vs
 * sequence length, decode state size vs length, and training-step memory.
 *
 *   bun bench/engine.bench.ts [--threads 2] [--quick] [--no-torch] [--json]
 *
 * Markdown tables on stdout; progress on stderr. Wall-clock and CPU time are both reported: on a
 * shared machine, tokens per CPU-second is the figure that load does not distort.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { engineInfo, flopsPerToken, Model, setThreads } from "../src/engine/index.ts";
import { native } from "../src/engine/ffi.ts";
import { compareGrads, runPeer, torchAvailable, writePeerDir } from "../src/engine/torchpeer.ts";

const argv = process.argv.slice(2);
const opt = (k: string, d: string) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : d;
};
const THREADS = Number(opt("--threads", "2"));
const QUICK = argv.includes("--quick");
const TORCH = !argv.includes("--no-torch") && torchAvailable();
const JSONOUT = argv.includes("--json");
setThreads(THREADS);
const tmp = mkdtempSync(join(tmpdir(), "nanorag-bench-"));
const results: Record<string, unknown> = { threads: THREADS };
const say = (s: string) => process.stderr.write(`${s}\n`);
const out = (s: string) => {
  if (!JSONOUT) process.stdout.write(`${s}\n`);
};
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const f1 = (x: number) => x.toFixed(1);
const fk = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(1)}k` : x.toFixed(0));
const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;

out(`Engine benchmark (${engineInfo()}): ${THREADS} threads, load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")} at start`);

// ---- 1. GEMM vs numpy ----
{
  const shapes: [number, number, number][] = [
    [2048, 128, 128], [2048, 512, 128], [2048, 128, 512], [2048, 1600, 128],
    [2048, 256, 256], [2048, 1024, 256], [2048, 256, 1024], [2048, 4096, 256],
  ];
  say("gemm ...");
  const L = native();
  const eng = shapes.map(([M, N, K]) => {
    const A = new Float32Array(M * K).map((_, i) => (i % 7) * 0.1);
    const W = new Float32Array(N * K).map((_, i) => (i % 5) * 0.1);
    const C = new Float32Array(M * N);
    L.nr_sgemm(0, 1, M, N, K, A, K, W, K, C, N, 0);
    const reps = Math.max(3, Math.floor(3e9 / (2 * M * N * K)));
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) L.nr_sgemm(0, 1, M, N, K, A, K, W, K, C, N, 0);
    return (2 * M * N * K) / ((performance.now() - t0) / 1000 / reps) / 1e9;
  });
  let np: number[] | null = null;
  try {
    np = (runPeer(["gemm", JSON.stringify(shapes)], THREADS) as { gflops: number }[]).map((x) => x.gflops);
  } catch (e) {
    say(`numpy peer unavailable: ${(e as Error).message.slice(0, 200)}`);
  }
  out("\n### GEMM (y = x W^T), GFLOP/s\n\n| M x N x K | engine | numpy (OpenBLAS) | engine / numpy |\n|---|---|---|---|");
  shapes.forEach(([M, N, K], i) => out(`| ${M} x ${N} x ${K} | ${f1(eng[i])} | ${np ? f1(np[i]) : "-"} | ${np ? (eng[i] / np[i]).toFixed(2) : "-"} |`));
  results.gemm = shapes.map((s, i) => ({ shape: s, engine: eng[i], numpy: np?.[i] }));
}

// ---- 2. training throughput ----
interface TrainRow { name: string; pattern: string; params: number; T: number; B: number; tokS: number; tokCpuS: number; gflops: number; stepMs: number; optMs: number; actBytes: number; stateBytes: number }
const trainRows: TrainRow[] = [];
function trainBench(name: string, cfg: Record<string, unknown>, B: number, T: number, steps: number): Model {
  const m = Model.create(cfg, 1);
  const V = m.config.vocab_size, n = B * T;
  let s = 7;
  const r = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296);
  const tok = new Int32Array(n).map(() => Math.floor(r() * V));
  const tgt = new Int32Array(n).map(() => Math.floor(r() * V));
  for (let i = 0; i < 2; i++) {
    m.step(tok, tgt, B, T);
    m.optimStep();
  }
  let tStep = 0, tOpt = 0;
  const c0 = cpuMs();
  for (let i = 0; i < steps; i++) {
    const a = performance.now();
    m.step(tok, tgt, B, T);
    const b = performance.now();
    m.optimStep();
    tStep += b - a;
    tOpt += performance.now() - b;
  }
  const cpu = (cpuMs() - c0) / steps;
  const wall = (tStep + tOpt) / steps;
  const fl = flopsPerToken(m.config, T).train * n;
  const row: TrainRow = {
    name, pattern: m.config.block_pattern, params: m.numParams, T, B,
    tokS: n / (wall / 1000), tokCpuS: (n / (cpu / 1000)) * THREADS, gflops: fl / (tStep / steps / 1000) / 1e9,
    stepMs: tStep / steps, optMs: tOpt / steps, actBytes: m.activationBytes, stateBytes: m.numParams * 16,
  };
  trainRows.push(row);
  say(`train ${name} ${row.pattern}: ${fk(row.tokS)} tok/s`);
  return m;
}
{
  const small = { vocab_size: 1600, n_embd: 128, n_head: 4, sequence_len: 512 };
  for (const p of QUICK ? ["TMT"] : ["TT", "MM", "TM", "TMT"]) trainBench("~0.5M", { ...small, block_pattern: p }, 8, 256, QUICK ? 3 : 5).free();
  if (!QUICK) trainBench("~0.5M T=512", { ...small, block_pattern: "TMT" }, 4, 512, 4).free();
  const big = { vocab_size: 4096, n_embd: 256, n_head: 4, sequence_len: 256 };
  for (const p of QUICK ? ["TTTMMMMM"] : ["TTTTTTTT", "MMMMMMMM", "TTTMMMMM"]) trainBench("~10M", { ...big, block_pattern: p }, 8, 256, 3).free();
  const gemmRef = (results.gemm as { shape: number[]; numpy?: number }[]).find((g) => g.shape[1] === 256 && g.shape[2] === 256)?.numpy;
  out("\n### Training (forward + backward + AdamW/Muon step), B x T tokens per step\n");
  out("| model | pattern | params | B x T | tokens/s (wall) | tokens/s per CPU-second x threads | fwd+bwd GFLOP/s | vs numpy sgemm | step ms | optim ms | activations | params+grads+optim |");
  out("|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of trainRows)
    out(`| ${r.name} | ${r.pattern} | ${(r.params / 1e6).toFixed(2)}M | ${r.B} x ${r.T} | ${fk(r.tokS)} | ${fk(r.tokCpuS)} | ${f1(r.gflops)} | ${gemmRef ? (r.gflops / gemmRef).toFixed(2) : "-"} | ${f1(r.stepMs)} | ${f1(r.optMs)} | ${mb(r.actBytes)} | ${mb(r.stateBytes)} |`);
  results.train = trainRows;
}

// ---- 3. PyTorch peer ----
if (TORCH) {
  out("\n### Same architecture in PyTorch 1.13 (CPU), same batch\n\n| model | pattern | B x T | engine tokens/s | PyTorch tokens/s | engine / PyTorch | grad max rel. error | loss (engine / torch) |\n|---|---|---|---|---|---|---|---|");
  const rows = [];
  for (const [cfg, B, T] of [
    [{ vocab_size: 1600, n_embd: 128, n_head: 4, sequence_len: 512, block_pattern: "TMT" }, 8, 256],
    ...(QUICK ? [] : [[{ vocab_size: 1600, n_embd: 128, n_head: 4, sequence_len: 512, block_pattern: "TT" }, 8, 256]]),
  ] as [Record<string, unknown>, number, number][]) {
    say(`torch peer ${cfg.block_pattern} ...`);
    const m = Model.create(cfg, 2);
    const P = m.params;
    let s = 99;
    const r = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296);
    for (let i = 0; i < P.length; i++) P[i] += 0.05 * (r() - 0.5);
    const n = B * T, V = m.config.vocab_size;
    const tokens = new Int32Array(n).map(() => Math.floor(r() * V));
    const targets = new Int32Array(n).map(() => Math.floor(r() * V));
    const dir = join(tmp, `peer-${cfg.block_pattern}`);
    writePeerDir(m, dir, { tokens, targets, B, T, scale: 1 / n });
    m.zeroGrad();
    const res = m.step(tokens, targets, B, T);
    const peerG = runPeer(["grad", dir], THREADS) as { loss_sum: number };
    const cmp = compareGrads(m, dir);
    m.zeroGrad();
    m.step(tokens, targets, B, T);
    const t0 = performance.now();
    const k = 3;
    for (let i = 0; i < k; i++) m.step(tokens, targets, B, T);
    const eng = n / ((performance.now() - t0) / 1000 / k);
    const peerS = runPeer(["speed", dir, "2"], THREADS) as { tokens_per_s: number };
    rows.push({ pattern: cfg.block_pattern, engine: eng, torch: peerS.tokens_per_s, gradRel: cmp.worst, worstTensor: cmp.worstName });
    out(`| ~0.5M | ${cfg.block_pattern} | ${B} x ${T} | ${fk(eng)} | ${fk(peerS.tokens_per_s)} | ${(eng / peerS.tokens_per_s).toFixed(1)}x | ${cmp.worst.toExponential(1)} (${cmp.worstName}) | ${res.lossSum.toFixed(3)} / ${peerG.loss_sum.toFixed(3)} |`);
    m.free();
  }
  results.torch = rows;
} else out("\n(PyTorch not importable under /usr/bin/python3: peer comparison skipped)");

// ---- 4. sequence length scaling ----
{
  const lens = QUICK ? [256, 1024, 4096] : [256, 512, 1024, 2048, 4096, 8192];
  const base = { vocab_size: 256, n_embd: 128, n_head: 4, sequence_len: 8192 };
  const mT = Model.create({ ...base, block_pattern: "TT" }, 1), mM = Model.create({ ...base, block_pattern: "MM" }, 1);
  out("\n### Forward (eval, B = 1) time and activation memory vs sequence length, 2 layers, d_model 128\n\n| T | all-T ms | all-M ms | all-T activations | all-M activations | all-T ms/token | all-M ms/token |\n|---|---|---|---|---|---|---|");
  const rows = [];
  for (const T of lens) {
    const tok = new Int32Array(T).map((_, i) => (i * 31) % 256), tgt = tok.map((x) => (x + 1) % 256);
    const time = (m: Model) => {
      m.eval(tok, tgt, 1, T);
      const reps = T <= 1024 ? 5 : 2;
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) m.eval(tok, tgt, 1, T);
      return (performance.now() - t0) / reps;
    };
    const a = time(mT), b = time(mM);
    rows.push({ T, tMs: a, mMs: b, tAct: mT.activationBytes, mAct: mM.activationBytes });
    say(`seq ${T}: T ${f1(a)} ms, M ${f1(b)} ms`);
    out(`| ${T} | ${f1(a)} | ${f1(b)} | ${mb(mT.activationBytes)} | ${mb(mM.activationBytes)} | ${(a / T).toFixed(4)} | ${(b / T).toFixed(4)} |`);
  }
  const cross = rows.find((r) => r.mMs < r.tMs);
  out(`\nCrossover (all-M forward faster than all-T): ${cross ? `T = ${cross.T}` : "not reached up to " + lens[lens.length - 1]}.`);
  results.seqlen = rows;
  out("\n### Decode state size vs length (B = 1)\n\n| length | all-T (KV cache) | all-M (conv + SSM state) |\n|---|---|---|");
  const st = [];
  for (const T of lens) {
    const a = mT.newState(1, T), b = mM.newState(1, T);
    st.push({ T, t: a.bytes, m: b.bytes });
    out(`| ${T} | ${mb(a.bytes)} | ${(b.bytes / 1024).toFixed(1)} KB |`);
    a.free();
    b.free();
  }
  results.state = st;
  mT.free();
  mM.free();
}

const hwm = readFileSync("/proc/self/status", "utf8").match(/VmHWM:\s+(\d+)/)?.[1];
out(`\nProcess peak RSS (all of the above, one process): ${hwm ? mb(Number(hwm) * 1024) : "?"}`);
if (JSONOUT) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
rmSync(tmp, { recursive: true, force: true });
