/** Native engine through the FFI: gradients vs finite differences, decode == forward, checkpoints,
 * resume, overfitting, determinism, sampling, malformed inputs. Tiny configs, fixed seeds. */
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../src/errors.ts";
import { engineInfo, loadCheckpoint, Model, Sampler, saveCheckpoint, setThreads } from "../src/engine/index.ts";
import { rng } from "../src/data/random.ts";
import { tempDir } from "./helpers.ts";

const tmp = tempDir("nanorag-engine-");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function gauss(r: () => number) {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}

const V = 37;
function tiny(pattern: string, extra: Record<string, unknown> = {}) {
  return { vocab_size: V, n_embd: 16, n_head: 4, n_kv_head: 2, block_pattern: pattern, sequence_len: 64, mamba_d_state: 4, ...extra };
}
function batch(B: number, T: number, seed: number) {
  const r = rng(seed);
  const tok = new Int32Array(B * T).map(() => Math.floor(r() * V));
  const tgt = new Int32Array(B * T).map(() => Math.floor(r() * V));
  return { tok, tgt };
}
/** move every weight off its (partly zero) init so that all gradients are non-trivial */
function perturb(m: Model, seed: number, scale = 0.3) {
  const r = rng(seed);
  const p = m.params;
  for (const t of m.tensors()) {
    const s = t.name.endsWith("A_log") || t.name.endsWith(".D") ? 0.1 : scale;
    for (let i = t.offset; i < t.offset + t.numel; i++) p[i] += s * gauss(r);
  }
}

test("engine info names the kernels and threads", () => {
  expect(engineInfo()).toMatch(/^nanorag \d+\.\d+\.\d+ cpu (avx512|avx2) threads=\d+$/);
});

describe("config", () => {
  test("malformed configs are refused with the field named", () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ ...tiny("TX") }, /block_pattern/],
      [{ ...tiny("TT"), n_layer: 3 }, /n_layer/],
      [{ ...tiny("TT"), n_head: 3 }, /n_head/],
      [{ ...tiny("TT"), n_kv_head: 3 }, /n_kv_head/],
      [{ ...tiny("MM"), mamba_d_state: 0 }, /mamba_d_state/],
      [{ ...tiny("TT"), vocab_size: 1.5 }, /vocab_size/],
      [{ ...tiny("TT"), bogus: 1 }, /bogus/],
      [{ ...tiny("MM"), n_embd: 12, mamba_expand: 1 }, /d_inner/],
      [{ ...tiny("TT"), logit_softcap: -1 }, /logit_softcap/],
    ];
    for (const [cfg, re] of bad) {
      expect(() => Model.create(cfg, 0)).toThrow(UserError);
      expect(() => Model.create(cfg, 0)).toThrow(re);
    }
    expect(() => Model.create("nope" as unknown, 0)).toThrow(/JSON object/);
  });
  test("bad batches are refused", () => {
    const m = Model.create(tiny("T"), 0);
    expect(() => m.step([0, 1, 99], [1, 2, 3], 1, 3)).toThrow(/outside/);
    expect(() => m.step([0, 1], [1, 2, 3], 1, 3)).toThrow(/expected 3/);
    expect(() => m.step(new Int32Array(65), new Int32Array(65), 1, 65)).toThrow(/sequence_len/);
    m.free();
  });
});

/** grad check: per tensor, a directional derivative along (g/|g| + random/|random|) and the 2 largest
 * |g| entries, against central differences of the float64-accumulated weighted loss sum. */
function gradCheck(pattern: string, extra: Record<string, unknown> = {}) {
  setThreads(2);
  const m = Model.create(tiny(pattern, extra), 7);
  perturb(m, 11);
  const B = 2, T = 9;
  const { tok, tgt } = batch(B, T, 5);
  tgt[3] = -1; // an ignored target
  const r = rng(3);
  const w = new Float32Array(B * T).map(() => r() * 2 - 0.5); // includes negative weights
  const loss = () => m.eval(tok, tgt, B, T, { weights: w }).lossSum;
  m.zeroGrad();
  m.step(tok, tgt, B, T, { weights: w, gradScale: 1 });
  const g = m.grads.slice();
  const P = m.params;
  const report: { name: string; rel: number; abs: number; mag: number }[] = [];
  for (const t of m.tensors()) {
    const gs = g.subarray(t.offset, t.offset + t.numel);
    let gn = 0;
    for (const x of gs) gn += x * x;
    gn = Math.sqrt(gn);
    const dir = new Float64Array(t.numel);
    let rn = 0;
    for (let i = 0; i < t.numel; i++) {
      dir[i] = gauss(r);
      rn += dir[i] * dir[i];
    }
    rn = Math.sqrt(rn);
    let dn = 0;
    for (let i = 0; i < t.numel; i++) {
      dir[i] = (gn > 0 ? gs[i] / gn : 0) + dir[i] / rn;
      dn += dir[i] * dir[i];
    }
    dn = Math.sqrt(dn);
    const orig = P.slice(t.offset, t.offset + t.numel);
    const dd = (eps: number) => {
      const at = (sgn: number) => {
        for (let i = 0; i < t.numel; i++) P[t.offset + i] = orig[i] + (sgn * eps * dir[i]) / dn;
        return loss();
      };
      const d = (at(1) - at(-1)) / (2 * eps);
      P.set(orig, t.offset);
      return d;
    };
    let an = 0;
    for (let i = 0; i < t.numel; i++) an += (gs[i] * dir[i]) / dn;
    // Richardson extrapolation of central differences at h and 2h (cancels the h^2 term); smaller
    // steps where the slope is steep (curvature), larger where it is flat (float32 noise)
    const h = 1e-2 / Math.max(1, Math.abs(an));
    const fd = (4 * dd(h) - dd(2 * h)) / 3;
    report.push({ name: t.name, rel: Math.abs(fd - an) / Math.max(Math.abs(fd), Math.abs(an), 1e-12), abs: Math.abs(fd - an), mag: Math.abs(an) });
    // largest entries
    const idx = [...gs.keys()].sort((a, b) => Math.abs(gs[b]) - Math.abs(gs[a])).slice(0, 2);
    for (const i of idx) {
      // central differences at e and e/2, Richardson-extrapolated (cancels the e^2 term)
      const cd = (e: number) => {
        P[t.offset + i] = orig[i] + e;
        const a = loss();
        P[t.offset + i] = orig[i] - e;
        const b = loss();
        P[t.offset + i] = orig[i];
        return (a - b) / (2 * e);
      };
      const e = (3e-2 * Math.max(1, Math.abs(orig[i]))) / Math.max(1, Math.abs(gs[i]));
      const fdi = (4 * cd(e / 2) - cd(e)) / 3;
      report.push({ name: `${t.name}[${i}]`, rel: Math.abs(fdi - gs[i]) / Math.max(Math.abs(fdi), Math.abs(gs[i]), 1e-12), abs: Math.abs(fdi - gs[i]), mag: Math.abs(gs[i]) });
    }
  }
  m.free();
  setThreads(1);
  return report;
}

describe("gradients vs finite differences", () => {
  for (const [pat, extra] of [
    ["TT", {}],
    ["MM", {}],
    ["TMT", { mamba_use_mlp: true, mamba_d_state: 8 }],
    // d_inner 24: the 8-channel scan (16-channel on AVX-512 needs d_inner % 16 == 0), d_conv 3
    ["MT", { n_embd: 12, n_head: 2, n_kv_head: 1, mamba_d_conv: 3 }],
  ] as [string, Record<string, unknown>][]) {
    test(`pattern ${pat} ${JSON.stringify(extra)}: every parameter tensor`, () => {
      const rep = gradCheck(pat, extra);
      // float32 forward: the loss carries ~1e-6 absolute noise, so a difference quotient is good to
      // about ATOL absolute; above that floor the relative error must stay under RTOL.
      const RTOL = 2e-2, ATOL = 5e-4;
      const above = rep.filter((x) => x.mag > 50 * ATOL);
      const worst = above.reduce((a, b) => (b.rel > a.rel ? b : a));
      const worstAbs = rep.reduce((a, b) => (b.abs > a.abs ? b : a));
      console.log(`grad check ${pat}: ${rep.length} checks over ${new Set(rep.map((x) => x.name.replace(/\[.*/, ""))).size} tensors; worst relative error ${worst.rel.toExponential(2)} (${worst.name}, over ${above.length} checks with |g| > ${50 * ATOL}); worst absolute ${worstAbs.abs.toExponential(2)} (${worstAbs.name})`);
      for (const x of rep) {
        const ok = x.rel < RTOL || x.abs < ATOL;
        if (!ok) console.log("  ", x.name, x.rel, x.abs, x.mag);
        expect(ok).toBe(true);
      }
    }, 60_000);
  }
});

describe("inference", () => {
  for (const pat of ["TT", "MM", "TMMT"]) {
    test(`decode == full forward (${pat})`, () => {
      setThreads(2);
      const m = Model.create(tiny(pat), 3);
      perturb(m, 4);
      const B = 2, T = 12, P0 = 5;
      const { tok } = batch(B, T, 9);
      const full = m.logits(tok, B, T);
      const st = m.newState(B, 32);
      const pre = new Int32Array(B * P0);
      for (let b = 0; b < B; b++) pre.set(tok.subarray(b * T, b * T + P0), b * P0);
      const lp = st.forward(pre, P0, true);
      let worst = 0;
      for (let b = 0; b < B; b++)
        for (let t = 0; t < P0; t++)
          for (let j = 0; j < V; j++) worst = Math.max(worst, Math.abs(lp[(b * P0 + t) * V + j] - full[(b * T + t) * V + j]));
      for (let t = P0; t < T; t++) {
        const step = new Int32Array(B).map((_, b) => tok[b * T + t]);
        const l = st.forward(step, 1);
        for (let b = 0; b < B; b++)
          for (let j = 0; j < V; j++) worst = Math.max(worst, Math.abs(l[b * V + j] - full[(b * T + t) * V + j]));
      }
      expect(st.pos).toBe(T);
      console.log(`decode vs forward ${pat}: max |diff| ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-4);
      st.reset();
      const again = st.forward(pre, P0);
      expect(again[3]).toBeCloseTo(lp[(P0 - 1) * V + 3], 5);
      st.free();
      m.free();
      setThreads(1);
    });
  }

  test("long context (several 256-key tiles): eval == training forward, prefill + decode == forward", () => {
    setThreads(2);
    const m = Model.create(tiny("TMT", { sequence_len: 1024 }), 5);
    perturb(m, 6);
    const B = 2, T = 700, P0 = 530;
    const { tok, tgt } = batch(B, T, 17);
    const ev = m.eval(tok, tgt, B, T).lossSum;
    const tr = m.step(tok, tgt, B, T).lossSum; // the training path keeps full probabilities
    expect(Math.abs(ev - tr) / Math.abs(tr)).toBeLessThan(1e-5);
    const full = m.logits(tok, B, T);
    const st = m.newState(B, T);
    const pre = new Int32Array(B * P0);
    for (let b = 0; b < B; b++) pre.set(tok.subarray(b * T, b * T + P0), b * P0);
    st.forward(pre, P0);
    let worst = 0;
    for (let t = P0; t < T; t += 1) {
      const l = st.forward(new Int32Array(B).map((_, b) => tok[b * T + t]), 1);
      for (let b = 0; b < B; b++)
        for (let j = 0; j < V; j++) worst = Math.max(worst, Math.abs(l[b * V + j] - full[(b * T + t) * V + j]));
    }
    console.log(`long context: eval vs train loss rel ${(Math.abs(ev - tr) / Math.abs(tr)).toExponential(1)}, decode vs forward max |diff| ${worst.toExponential(1)}`);
    expect(worst).toBeLessThan(1e-4);
    st.free();
    m.free();
    setThreads(1);
  }, 60_000);

  test("state size: constant for M, linear in max_len for T", () => {
    const mT = Model.create(tiny("TT"), 0), mM = Model.create(tiny("MM"), 0);
    expect(mT.newState(1, 64).bytes).toBe(2 * mT.newState(1, 32).bytes);
    expect(mM.newState(1, 64).bytes).toBe(mM.newState(1, 32).bytes);
  });

  test("token logprobs equal log-softmax of the logits", () => {
    const m = Model.create(tiny("TM"), 1);
    perturb(m, 2);
    const { tok, tgt } = batch(1, 10, 4);
    const { logprobs, lossSum, weightSum } = m.eval(tok, tgt, 1, 10, { tokenLogprobs: true });
    const lg = m.logits(tok, 1, 10);
    let s = 0;
    for (let t = 0; t < 10; t++) {
      const row = lg.subarray(t * V, (t + 1) * V);
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((a, x) => a + Math.exp(x - mx), 0));
      expect(logprobs![t]).toBeCloseTo(row[tgt[t]] - lse, 4);
      s -= logprobs![t];
    }
    expect(weightSum).toBe(10);
    expect(lossSum).toBeCloseTo(s, 3);
  });

  test("pooled embeddings respect the mask (causal: first-token pool = 1-token input)", () => {
    const m = Model.create(tiny("TM"), 1);
    perturb(m, 2);
    const { tok } = batch(1, 6, 1);
    const mask = new Float32Array(6);
    mask[0] = 1;
    const a = m.embed(tok, 1, 6, mask);
    const b = m.embed(tok.subarray(0, 1), 1, 1);
    for (let i = 0; i < 16; i++) expect(a[i]).toBeCloseTo(b[i], 5);
    const all = m.embed(tok, 1, 6);
    expect(all.length).toBe(16);
  });

  test("sampling: greedy, top-k 1, seeded reproducibility, top-p", () => {
    const logits = new Float32Array([0.1, 2.0, 0.5, 1.9, -3, 0, 0, 5]);
    const s = new Sampler(42);
    expect([...s.sample(logits, 2, 4, { temperature: 0 })]).toEqual([1, 3]);
    expect([...s.sample(logits, 2, 4, { temperature: 1, topK: 1 })]).toEqual([1, 3]);
    const draw = (seed: number) => {
      const x = new Sampler(seed);
      return Array.from({ length: 20 }, () => x.sample(logits, 2, 4, { temperature: 1 })[0]);
    };
    expect(draw(7)).toEqual(draw(7));
    const counts = [0, 0, 0, 0];
    const x = new Sampler(1);
    for (let i = 0; i < 400; i++) counts[x.sample(logits.subarray(0, 4), 1, 4, { topP: 0.5 })[0]]++;
    expect(counts[0] + counts[2]).toBe(0); // only the two top tokens carry >= 50% mass
    expect(counts[1]).toBeGreaterThan(0);
    expect(counts[3]).toBeGreaterThan(0);
  });
});

describe("training", () => {
  test("loss weights: zero ignores a token, negative flips its gradient", () => {
    const m = Model.create(tiny("TM"), 2);
    perturb(m, 3);
    const { tok, tgt } = batch(1, 8, 2);
    const w1 = new Float32Array(8).fill(0);
    w1[5] = 1;
    m.step(tok, tgt, 1, 8, { weights: w1, gradScale: 1 });
    const g1 = m.grads.slice();
    m.zeroGrad();
    const t2 = tgt.slice();
    for (let i = 0; i < 8; i++) if (i !== 5) t2[i] = -1;
    m.step(tok, t2, 1, 8, { gradScale: 1 });
    const g2 = m.grads.slice();
    m.zeroGrad();
    w1[5] = -1;
    m.step(tok, tgt, 1, 8, { weights: w1, gradScale: 1 });
    const g3 = m.grads.slice();
    let d12 = 0, d13 = 0;
    for (let i = 0; i < g1.length; i++) {
      d12 = Math.max(d12, Math.abs(g1[i] - g2[i]));
      d13 = Math.max(d13, Math.abs(g1[i] + g3[i]));
    }
    expect(d12).toBeLessThan(1e-6);
    expect(d13).toBeLessThan(1e-6);
  });

  test("gradients accumulate across calls and are deterministic across thread counts", () => {
    const run = (threads: number) => {
      setThreads(threads);
      const m = Model.create(tiny("TMT"), 5);
      perturb(m, 6);
      const { tok, tgt } = batch(3, 16, 8);
      m.step(tok, tgt, 3, 16);
      m.step(tok, tgt, 3, 16);
      const g = m.grads.slice();
      m.free();
      return g;
    };
    const a = run(1), b = run(2), c = run(2);
    expect(Buffer.from(b.buffer).equals(Buffer.from(c.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    setThreads(1);
  });

  for (const pat of ["TT", "MM", "TM"]) {
    test(`a tiny model overfits one batch (${pat})`, () => {
      setThreads(2);
      const m = Model.create({ ...tiny(pat), n_embd: 32 }, 1);
      const { tok, tgt } = batch(2, 16, 21);
      let first = 0, last = 0;
      for (let s = 0; s < 60; s++) {
        const r = m.step(tok, tgt, 2, 16);
        m.optimStep({ lrMatrix: 0.04 });
        if (s === 0) first = r.loss;
        last = r.loss;
      }
      console.log(`overfit ${pat}: loss ${first.toFixed(3)} -> ${last.toFixed(4)}`);
      expect(last).toBeLessThan(0.05);
      m.free();
      setThreads(1);
    }, 60_000);
  }

  test("loss falls on real text (bytes of the repo's docs)", () => {
    setThreads(2);
    const text = readFileSync(new URL("../native/cpu/scan.c", import.meta.url)) as Uint8Array;
    const m = Model.create({ vocab_size: 256, n_embd: 32, n_head: 2, block_pattern: "TM", sequence_len: 64 }, 1);
    const B = 4, T = 32;
    const r = rng(1);
    const get = () => {
      const tok = new Int32Array(B * T), tgt = new Int32Array(B * T);
      for (let b = 0; b < B; b++) {
        const o = Math.floor(r() * (text.length - T - 1));
        for (let t = 0; t < T; t++) {
          tok[b * T + t] = text[o + t];
          tgt[b * T + t] = text[o + t + 1];
        }
      }
      return { tok, tgt };
    };
    const held = get();
    const before = m.eval(held.tok, held.tgt, B, T).loss;
    for (let s = 0; s < 50; s++) {
      const { tok, tgt } = get();
      m.step(tok, tgt, B, T);
      m.optimStep();
    }
    const after = m.eval(held.tok, held.tgt, B, T).loss;
    console.log(`real text: held-out loss ${before.toFixed(3)} -> ${after.toFixed(3)} nats/byte`);
    expect(after).toBeLessThan(before - 1.5);
    m.free();
    setThreads(1);
  }, 60_000);
});

describe("checkpoints", () => {
  const cfg = tiny("TM", { mamba_use_mlp: true });
  const B = 2, T = 16;
  const data = Array.from({ length: 8 }, (_, i) => batch(B, T, 100 + i));
  const train = (m: Model, from: number, to: number) => {
    const losses: number[] = [];
    for (let s = from; s < to; s++) {
      losses.push(m.step(data[s].tok, data[s].tgt, B, T).loss);
      m.optimStep({ lrMatrix: 0.02 + 0.001 * s });
    }
    return losses;
  };

  test("save/load is bit-exact and resume gives the same loss curve", () => {
    setThreads(2);
    const a = Model.create(cfg, 9);
    const full = train(a, 0, 8);
    const b = Model.create(cfg, 9);
    const first = train(b, 0, 4);
    const dir = join(tmp, "ck1");
    saveCheckpoint(b, dir, { step: 4, tokenizer: "bytes-256" });
    const { model: c, meta } = loadCheckpoint(dir);
    expect(meta).toEqual({ step: 4, tokenizer: "bytes-256" });
    expect(Buffer.from(c.params.buffer).equals(Buffer.from(b.params.buffer))).toBe(true);
    expect(Buffer.from(c.optM.buffer).equals(Buffer.from(b.optM.buffer))).toBe(true);
    expect(Buffer.from(c.optV.buffer).equals(Buffer.from(b.optV.buffer))).toBe(true);
    expect(c.optStep).toBe(4);
    const rest = train(c, 4, 8);
    expect([...first, ...rest]).toEqual(full);
    a.free();
    b.free();
    c.free();
    setThreads(1);
  });

  test("truncated, corrupt and mismatched checkpoints are refused", () => {
    const m = Model.create(cfg, 1);
    const dir = join(tmp, "ck2");
    saveCheckpoint(m, dir);
    const mp = join(dir, "model.safetensors");
    const orig = readFileSync(mp);
    truncateSync(mp, orig.length - 10);
    expect(() => loadCheckpoint(dir)).toThrow(/truncated/);
    const bad = Buffer.from(orig);
    bad[bad.length - 1] ^= 0xff;
    writeFileSync(mp, bad);
    expect(() => loadCheckpoint(dir)).toThrow(/hash/);
    writeFileSync(mp, orig);
    expect(() => loadCheckpoint(dir)).not.toThrow();
    // a config that does not match the weights
    const cj = join(dir, "config.json");
    const c = JSON.parse(readFileSync(cj, "utf8"));
    c.model_config.n_embd = 24;
    c.model_config.mlp_hidden = 96;
    delete c.files;
    writeFileSync(cj, JSON.stringify(c));
    expect(() => loadCheckpoint(dir)).toThrow(/shape/);
    writeFileSync(cj, "{ not json");
    expect(() => loadCheckpoint(dir)).toThrow(/JSON/);
    expect(() => loadCheckpoint(join(tmp, "nope"))).toThrow(/not a checkpoint/);
    m.free();
  });
});
