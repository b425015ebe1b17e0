/** Typed wrapper over the native engine: a Model (training, eval, logits, embeddings, optimizer) and
 * an InferenceState (prefill/decode with KV cache and Mamba state), plus sampling. */
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { UserError } from "../errors.ts";
import { type ModelConfig, nativeConfig, resolveConfig } from "./config.ts";
import { lastError, native } from "./ffi.ts";

export type ParamGroup = "embed" | "head" | "matrix" | "vector";
const GROUPS: ParamGroup[] = ["embed", "head", "matrix", "vector"];

export interface TensorInfo {
  name: string;
  shape: number[];
  /** offset into the flat parameter buffer, in floats */
  offset: number;
  numel: number;
  /** optimizer group: embed/head/vector use AdamW, matrix uses Muon */
  group: ParamGroup;
}

export interface StepResult {
  /** sum_i w_i CE_i / sum_i w_i (NaN when the weight sum is 0) */
  loss: number;
  lossSum: number;
  weightSum: number;
}

export interface OptimHyper {
  lrEmbed: number;
  lrHead: number;
  lrMatrix: number;
  lrVector: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  muonMomentum: number;
  muonWeightDecay: number;
  /** global-norm clip; <= 0 disables */
  gradClip: number;
  nsSteps: number;
}

/** nanochat's AdamW/Muon defaults (lrs for embeddings/head/vectors scaled by (C/768)^-0.5), clip 1. */
export function defaultHyper(c: ModelConfig): OptimHyper {
  const s = Math.sqrt(768 / c.n_embd);
  return {
    lrEmbed: 0.2 * s,
    lrHead: 0.004 * s,
    lrMatrix: 0.02,
    lrVector: 3e-3 * s,
    beta1: 0.8,
    beta2: 0.95,
    eps: 1e-10,
    weightDecay: 0,
    muonMomentum: 0.95,
    muonWeightDecay: 0,
    gradClip: 1,
    nsSteps: 5,
  };
}

function check(rc: number, what: string): void {
  if (rc !== 0) throw new UserError(`${what}: ${lastError()}`);
}

function i32(a: Int32Array | number[], n: number, what: string): Int32Array {
  const x = a instanceof Int32Array ? a : Int32Array.from(a);
  if (x.length !== n) throw new UserError(`${what}: expected ${n} values, got ${x.length}`);
  return x;
}

export class Model {
  readonly config: ModelConfig;
  #h: Pointer | null;
  #params?: Float32Array;
  #grads?: Float32Array;
  #m?: Float32Array;
  #v?: Float32Array;
  #tensors?: TensorInfo[];

  private constructor(config: ModelConfig, h: Pointer) {
    this.config = config;
    this.#h = h;
  }

  /** A fresh model with the engine's deterministic initialisation for `seed`. */
  static create(config: unknown, seed = 0): Model {
    const cfg = resolveConfig(config);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UserError(`seed must be an integer in [0, 2^32), got ${seed}`);
    const { ints, floats } = nativeConfig(cfg);
    const pat = Buffer.from(`${cfg.block_pattern}\0`);
    const h = native().nr_model_new(ints, ints.length, floats, floats.length, pat, seed);
    if (!h) throw new UserError(`model config: ${lastError()}`);
    return new Model(cfg, h as Pointer);
  }

  get handle(): Pointer {
    if (!this.#h) throw new Error("model was freed");
    return this.#h;
  }

  get numParams(): number {
    return Number(native().nr_model_num_params(this.handle));
  }

  #view(p: Pointer | null): Float32Array {
    if (!p) throw new Error("null buffer");
    return new Float32Array(toArrayBuffer(p, 0, this.numParams * 4));
  }

  /** Zero-copy view of the flat parameter buffer (writes go straight to the engine). */
  get params(): Float32Array {
    this.#params ??= this.#view(native().nr_model_params(this.handle) as Pointer | null);
    return this.#params;
  }
  get grads(): Float32Array {
    this.#grads ??= this.#view(native().nr_model_grads(this.handle) as Pointer | null);
    return this.#grads;
  }
  /** AdamW exp_avg / Muon momentum buffer (flat, same layout as params) */
  get optM(): Float32Array {
    this.#m ??= this.#view(native().nr_model_opt_m(this.handle) as Pointer | null);
    return this.#m;
  }
  /** AdamW exp_avg_sq (zero for Muon tensors) */
  get optV(): Float32Array {
    this.#v ??= this.#view(native().nr_model_opt_v(this.handle) as Pointer | null);
    return this.#v;
  }
  get optStep(): number {
    return Number(native().nr_model_opt_step(this.handle));
  }
  set optStep(s: number) {
    native().nr_model_set_opt_step(this.handle, BigInt(s) as unknown as number);
  }

  /** Copies the device's params, grads and optimizer state into the host views (CUDA; a no-op on the CPU). Call before reading them. */
  download(): void {
    check(native().nr_model_download(this.handle), "copy from the device");
  }
  /** Recompute each block's activations in backward instead of keeping them (CUDA; the CPU build refuses it). */
  setRecompute(on: boolean): void {
    check(native().nr_set_recompute(this.handle, on ? 1 : 0), "--recompute");
  }
  /** Copies the host views to the device (CUDA; a no-op on the CPU). Call after writing them. */
  upload(): void {
    check(native().nr_model_upload(this.handle), "copy to the device");
  }

  tensors(): TensorInfo[] {
    if (this.#tensors) return this.#tensors;
    const L = native();
    const h = this.handle;
    const n = L.nr_model_num_tensors(h);
    const out: TensorInfo[] = [];
    for (let i = 0; i < n; i++) {
      const nd = L.nr_model_tensor_ndim(h, i);
      const shape: number[] = [];
      for (let d = 0; d < nd; d++) shape.push(L.nr_model_tensor_dim(h, i, d));
      out.push({
        name: String(L.nr_model_tensor_name(h, i)),
        shape,
        offset: Number(L.nr_model_tensor_offset(h, i)),
        numel: Number(L.nr_model_tensor_numel(h, i)),
        group: GROUPS[L.nr_model_tensor_group(h, i)] ?? "vector",
      });
    }
    this.#tensors = out;
    return out;
  }

  /** View of one named parameter tensor. */
  tensor(name: string, which: "params" | "grads" = "params"): Float32Array {
    const t = this.tensors().find((x) => x.name === name);
    if (!t) throw new UserError(`no parameter named ${name}`);
    return this[which].subarray(t.offset, t.offset + t.numel);
  }

  /**
   * Forward + backward on B rows of T tokens; gradients accumulate. The gradient is that of
   * gradScale * sum_i w_i CE_i; gradScale defaults to 1 / sum_i w_i (mean over weighted tokens).
   */
  step(
    tokens: Int32Array | number[],
    targets: Int32Array | number[],
    B: number,
    T: number,
    opts: { weights?: Float32Array; gradScale?: number } = {},
  ): StepResult {
    const n = B * T;
    const tok = i32(tokens, n, "tokens");
    const tgt = i32(targets, n, "targets");
    const w = opts.weights ?? null;
    if (w && w.length !== n) throw new UserError(`weights: expected ${n} values, got ${w.length}`);
    let scale = opts.gradScale;
    if (scale === undefined) {
      let ws = 0;
      for (let i = 0; i < n; i++) if (tgt[i] >= 0) ws += w ? w[i] : 1;
      scale = ws !== 0 ? 1 / ws : 0;
    }
    const out = new Float64Array(2);
    check(native().nr_step(this.handle, tok, tgt, w, B, T, scale, out), "train step");
    return { lossSum: out[0], weightSum: out[1], loss: out[1] !== 0 ? out[0] / out[1] : Number.NaN };
  }

  /** Forward only; optionally the per-token log-probabilities of the targets (0 where ignored). */
  eval(
    tokens: Int32Array | number[],
    targets: Int32Array | number[],
    B: number,
    T: number,
    opts: { weights?: Float32Array; tokenLogprobs?: boolean } = {},
  ): StepResult & { logprobs?: Float32Array } {
    const n = B * T;
    const tok = i32(tokens, n, "tokens");
    const tgt = i32(targets, n, "targets");
    const w = opts.weights ?? null;
    if (w && w.length !== n) throw new UserError(`weights: expected ${n} values, got ${w.length}`);
    const lp = opts.tokenLogprobs ? new Float32Array(n) : null;
    const out = new Float64Array(2);
    check(native().nr_eval(this.handle, tok, tgt, w, B, T, out, lp), "eval");
    const r: StepResult & { logprobs?: Float32Array } = {
      lossSum: out[0],
      weightSum: out[1],
      loss: out[1] !== 0 ? out[0] / out[1] : Number.NaN,
    };
    if (lp) r.logprobs = lp;
    return r;
  }

  /** Full-forward logits (after the soft cap), B*T*V. */
  logits(tokens: Int32Array | number[], B: number, T: number): Float32Array {
    const tok = i32(tokens, B * T, "tokens");
    const out = new Float32Array(B * T * this.config.vocab_size);
    check(native().nr_logits(this.handle, tok, B, T, out), "logits");
    return out;
  }

  /** Mean of the final normalised hidden states over mask (default: all tokens), B*C. */
  embed(tokens: Int32Array | number[], B: number, T: number, mask?: Float32Array): Float32Array {
    const tok = i32(tokens, B * T, "tokens");
    if (mask && mask.length !== B * T) throw new UserError(`mask: expected ${B * T} values, got ${mask.length}`);
    const out = new Float32Array(B * this.config.n_embd);
    check(native().nr_embed(this.handle, tok, mask ?? null, B, T, out), "embed");
    return out;
  }

  /** Bytes of the activation arena as last sized (grows to the largest batch shape used). */
  get activationBytes(): number {
    return Number(native().nr_model_act_bytes(this.handle));
  }

  zeroGrad(): void {
    native().nr_zero_grad(this.handle);
  }

  /** Clip, AdamW + Muon step, zero the gradients. Returns the pre-clip global gradient norm. */
  optimStep(hp: Partial<OptimHyper> = {}): number {
    const h = { ...defaultHyper(this.config), ...hp };
    const arr = new Float32Array([
      h.lrEmbed, h.lrHead, h.lrMatrix, h.lrVector, h.beta1, h.beta2, h.eps, h.weightDecay, h.muonMomentum,
      h.muonWeightDecay, h.gradClip, h.nsSteps,
    ]);
    const norm = new Float32Array(1);
    check(native().nr_optim_step(this.handle, arr, arr.length, norm), "optimizer step");
    return norm[0];
  }

  newState(B: number, maxLen: number): InferenceState {
    const h = native().nr_state_new(this.handle, B, maxLen);
    if (!h) throw new UserError(`inference state: ${lastError()}`);
    return new InferenceState(this, h as Pointer, B);
  }

  free(): void {
    if (this.#h) native().nr_model_free(this.#h);
    this.#h = null;
    this.#params = this.#grads = this.#m = this.#v = undefined;
  }
}

export class InferenceState {
  #h: Pointer | null;
  constructor(
    readonly model: Model,
    h: Pointer,
    readonly B: number,
  ) {
    this.#h = h;
  }
  get handle(): Pointer {
    if (!this.#h) throw new Error("state was freed");
    return this.#h;
  }
  /** Tokens fed so far (per row). */
  get pos(): number {
    return native().nr_state_pos(this.handle);
  }
  /** Bytes held by the caches (KV for T layers, conv + SSM for M layers). */
  get bytes(): number {
    return Number(native().nr_state_bytes(this.handle));
  }
  reset(): void {
    native().nr_state_reset(this.handle);
  }
  /** Feed Tn tokens per row (B*Tn); logits for the last position (B*V), or every position (B*Tn*V). */
  forward(tokens: Int32Array | number[], Tn: number, allPositions = false): Float32Array {
    const tok = i32(tokens, this.B * Tn, "tokens");
    const V = this.model.config.vocab_size;
    const out = new Float32Array(this.B * (allPositions ? Tn : 1) * V);
    check(native().nr_state_forward(this.model.handle, this.handle, tok, Tn, out, allPositions ? 1 : 0), "inference");
    return out;
  }
  free(): void {
    if (this.#h) native().nr_state_free(this.#h);
    this.#h = null;
  }
}

export interface SampleOptions {
  /** <= 0: greedy */
  temperature?: number;
  /** <= 0: off */
  topK?: number;
  /** >= 1: off */
  topP?: number;
}

/** A seeded sampler; its state advances with every draw. */
export class Sampler {
  readonly rng: BigUint64Array;
  constructor(seed: number | bigint = 0) {
    this.rng = new BigUint64Array([BigInt(seed)]);
  }
  sample(logits: Float32Array, B: number, V: number, o: SampleOptions = {}): Int32Array {
    if (logits.length !== B * V) throw new UserError(`sample: expected ${B * V} logits, got ${logits.length}`);
    const out = new Int32Array(B);
    check(native().nr_sample(logits, B, V, o.temperature ?? 1, o.topK ?? 0, o.topP ?? 1, this.rng, out), "sample");
    return out;
  }
}
