/** Model configuration: nanochat GPT fields plus the hybrid block pattern and Mamba-1 dimensions. */
import { UserError } from "../errors.ts";

export interface ModelConfig {
  vocab_size: number;
  n_layer: number;
  n_embd: number;
  n_head: number;
  n_kv_head: number;
  /** one letter per layer: "T" attention + MLP, "M" Mamba-1 */
  block_pattern: string;
  sequence_len: number;
  mlp_hidden: number;
  mamba_d_state: number;
  mamba_d_conv: number;
  mamba_expand: number;
  /** "auto" = ceil(n_embd / 16) */
  mamba_dt_rank: number | "auto";
  mamba_use_mlp: boolean;
  rope_base: number;
  /** 0 disables the soft cap */
  logit_softcap: number;
  norm_eps: number;
}

const DEFAULTS: Omit<ModelConfig, "vocab_size" | "n_layer" | "n_embd" | "block_pattern" | "n_head" | "n_kv_head" | "mlp_hidden"> = {
  sequence_len: 2048,
  mamba_d_state: 16,
  mamba_d_conv: 4,
  mamba_expand: 2,
  mamba_dt_rank: "auto",
  mamba_use_mlp: false,
  rope_base: 10000,
  logit_softcap: 15,
  norm_eps: 1e-6,
};

const KNOWN = new Set<string>([
  "vocab_size", "n_layer", "n_embd", "n_head", "n_kv_head", "block_pattern", "sequence_len", "mlp_hidden",
  "mamba_d_state", "mamba_d_conv", "mamba_expand", "mamba_dt_rank", "mamba_use_mlp", "rope_base",
  "logit_softcap", "norm_eps",
]);

function bad(field: string, why: string): never {
  throw new UserError(`model config: field "${field}" ${why}`);
}

function int(o: Record<string, unknown>, k: string, lo: number, hi: number): number {
  const v = o[k];
  if (typeof v !== "number" || !Number.isInteger(v)) bad(k, `must be an integer, got ${JSON.stringify(v)}`);
  if (v < lo || v > hi) bad(k, `must be in [${lo}, ${hi}], got ${v}`);
  return v;
}

function num(o: Record<string, unknown>, k: string, lo: number, hi: number, openLo = false): number {
  const v = o[k];
  if (typeof v !== "number" || !Number.isFinite(v)) bad(k, `must be a finite number, got ${JSON.stringify(v)}`);
  if (openLo ? v <= lo : v < lo) bad(k, `must be ${openLo ? ">" : ">="} ${lo}, got ${v}`);
  if (v > hi) bad(k, `must be <= ${hi}, got ${v}`);
  return v;
}

/** Fill defaults and validate; throws UserError naming the field on anything malformed. */
export function resolveConfig(input: unknown): ModelConfig {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new UserError(`model config must be a JSON object, got ${input === null ? "null" : typeof input}`);
  }
  const raw = input as Record<string, unknown>;
  for (const k of Object.keys(raw)) if (!KNOWN.has(k)) bad(k, "is not a known field");
  const o: Record<string, unknown> = { ...DEFAULTS, ...raw };
  if (o.block_pattern === undefined && typeof o.n_layer === "number") o.block_pattern = "T".repeat(o.n_layer);
  if (typeof o.block_pattern !== "string") bad("block_pattern", "must be a string of T and M");
  const pattern = o.block_pattern as string;
  if (!/^[TM]{1,256}$/.test(pattern)) bad("block_pattern", `must be 1..256 letters T or M, got ${JSON.stringify(pattern)}`);
  if (o.n_layer === undefined) o.n_layer = pattern.length;
  const n_layer = int(o, "n_layer", 1, 256);
  if (n_layer !== pattern.length) bad("n_layer", `(${n_layer}) must equal the length of block_pattern (${pattern.length})`);
  const n_embd = int(o, "n_embd", 8, 65536);
  if (o.n_head === undefined) o.n_head = Math.max(1, Math.ceil(n_embd / 128));
  if (o.n_kv_head === undefined) o.n_kv_head = o.n_head;
  if (o.mlp_hidden === undefined) o.mlp_hidden = 4 * n_embd;
  const cfg: ModelConfig = {
    vocab_size: int(o, "vocab_size", 2, 1 << 24),
    n_layer,
    n_embd,
    n_head: int(o, "n_head", 1, 4096),
    n_kv_head: int(o, "n_kv_head", 1, 4096),
    block_pattern: pattern,
    sequence_len: int(o, "sequence_len", 1, 1 << 20),
    mlp_hidden: int(o, "mlp_hidden", 1, 1 << 20),
    mamba_d_state: int(o, "mamba_d_state", 1, 64),
    mamba_d_conv: int(o, "mamba_d_conv", 1, 16),
    mamba_expand: int(o, "mamba_expand", 1, 8),
    mamba_dt_rank: o.mamba_dt_rank === "auto" ? "auto" : int(o, "mamba_dt_rank", 1, 1 << 20),
    mamba_use_mlp: (() => {
      if (typeof o.mamba_use_mlp !== "boolean") bad("mamba_use_mlp", "must be true or false");
      return o.mamba_use_mlp as boolean;
    })(),
    rope_base: num(o, "rope_base", 1, 1e12, true),
    logit_softcap: num(o, "logit_softcap", 0, 1e6),
    norm_eps: num(o, "norm_eps", 0, 0.1, true),
  };
  if (pattern.includes("T")) {
    if (cfg.n_embd % cfg.n_head) bad("n_head", `(${cfg.n_head}) must divide n_embd (${cfg.n_embd})`);
    if ((cfg.n_embd / cfg.n_head) % 2) bad("n_head", `gives an odd head_dim ${cfg.n_embd / cfg.n_head}; RoPE needs it even`);
    if (cfg.n_head % cfg.n_kv_head) bad("n_kv_head", `(${cfg.n_kv_head}) must divide n_head (${cfg.n_head})`);
  }
  if (pattern.includes("M")) {
    const di = cfg.mamba_expand * cfg.n_embd;
    if (di % 8) bad("mamba_expand", `gives d_inner = ${di}, which must be a multiple of 8`);
    if (cfg.mamba_dt_rank !== "auto" && cfg.mamba_dt_rank > di) bad("mamba_dt_rank", `must be <= d_inner (${di})`);
  }
  return cfg;
}

/** The integer and float arrays nr_model_new takes (order of NR_CFG_* / NR_FCFG_* in nanorag.h). */
export function nativeConfig(c: ModelConfig): { ints: Int32Array; floats: Float32Array } {
  const ints = new Int32Array([
    c.vocab_size, c.n_layer, c.n_embd, c.n_head, c.n_kv_head, c.mamba_d_state, c.mamba_d_conv, c.mamba_expand,
    c.mamba_dt_rank === "auto" ? 0 : c.mamba_dt_rank, c.mamba_use_mlp ? 1 : 0, c.sequence_len, c.mlp_hidden,
  ]);
  const floats = new Float32Array([c.rope_base, c.logit_softcap, c.norm_eps]);
  return { ints, floats };
}

/** Forward FLOPs per token from the matmuls (2 per multiply-add) plus causal attention at length T. */
export function flopsPerToken(c: ModelConfig, T: number): { forward: number; train: number } {
  const C = c.n_embd, hd = C / c.n_head, di = c.mamba_expand * C, N = c.mamba_d_state;
  const R = c.mamba_dt_rank === "auto" ? Math.ceil(C / 16) : c.mamba_dt_rank;
  let mm = c.vocab_size * C; // lm_head
  let attn = 0;
  for (const k of c.block_pattern) {
    if (k === "T") {
      mm += C * (c.n_head + 2 * c.n_kv_head) * hd + C * C + 2 * C * c.mlp_hidden;
      attn += 2 * c.n_head * hd * (T / 2) * 2; // qk and pv over ~T/2 visible keys
    } else {
      mm += 2 * di * C + (R + 2 * N) * di + R * di + C * di + (c.mamba_use_mlp ? 2 * C * c.mlp_hidden : 0);
    }
  }
  const forward = 2 * mm + attn;
  return { forward, train: 3 * forward };
}
