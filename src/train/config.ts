/**
 * Training configuration: one flat, typed record (model shape, optimizer, schedule, data, RAG and
 * REFRAG settings). Named configs live in configs/*.ts; every key can be overridden by a flag of the
 * same name in kebab case (`lrMatrix` -> `--lr-matrix`); unknown keys are errors.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { UserError } from "../errors.ts";
import type { ModelConfig } from "../engine/config.ts";

export interface TrainConfig {
  // ---- model (vocab size comes from the tokenizer) ----
  blockPattern: string;
  nEmbd: number;
  nHead: number;
  nKvHead: number;
  /** 0 = 4 * nEmbd */
  mlpHidden: number;
  mambaDState: number;
  mambaDConv: number;
  mambaExpand: number;
  mambaUseMlp: boolean;
  /** training row length T (tokens per row) and the model's max sequence length */
  seqLen: number;
  logitSoftcap: number;
  ropeBase: number;
  // ---- optimizer (lrEmbed, lrHead and lrVector are "tuned at 768": scaled by sqrt(768 / nEmbd), as nanochat does) ----
  lrEmbed: number;
  lrHead: number;
  lrMatrix: number;
  lrVector: number;
  /** multiplies every learning rate (nanochat's init_lr_frac) */
  initLrFrac: number;
  beta1: number;
  beta2: number;
  weightDecay: number;
  muonMomentum: number;
  gradClip: number;
  // ---- schedule ----
  /** optimizer steps of the (main) stage */
  steps: number;
  /** rows per micro-batch */
  deviceBatch: number;
  /** micro-batches per optimizer step */
  gradAccum: number;
  warmupSteps: number;
  /** fraction of steps at the end with a linear decay to finalLrFrac */
  warmdownFrac: number;
  finalLrFrac: number;
  // ---- loop ----
  evalEvery: number;
  /** validation batches for the validation loss */
  evalBatches: number;
  /** validation questions answered (greedy) at each evaluation */
  evalQuestions: number;
  saveEvery: number;
  seed: number;
  threads: number;
  /** recompute block activations in backward (less GPU memory for long contexts; CUDA only) */
  recompute: boolean;
  // ---- data / RAG ----
  /** pack several examples into a row (else one example per row, padded) */
  pack: boolean;
  retriever: string;
  topK: number;
  /** question-answer pairs rendered after one set of documents (dense supervision) */
  qaPerContext: number;
  /** random distractor documents added to the gold ones */
  distractors: number;
  /** share of contexts whose gold documents are removed (answers become the abstention) */
  abstainRate: number;
  /** fraction of the steps trained on gold-only short contexts first (curriculum) */
  curriculumFrac: number;
  /** question before and after the documents */
  readTwice: boolean;
  /** share of contexts whose answers are rewritten to other values of the same relation, so reading beats memorising */
  augment: number;
  /**
   * share of augmented common-noun answers (a profession, a hobby) rewritten to a word from outside their relation (another
   * relation's value or a fresh lower-case word) rather than another value of it: then knowing the relation's values cannot
   * find the answer, only copying the word in the document's slot can
   */
  augmentNouns: number;
  /** share of multi-hop trajectories mixed into RAG SFT data */
  multiHopRate: number;
  /** language-model (pretraining) steps on KB text before RAG SFT (pipeline; `pretrain` uses `steps`) */
  pretrainSteps: number;
  /** pretraining examples are texts with fresh names and numbers, shown twice, so the second copy trains copying */
  pretrainCopy: boolean;
  // ---- REFRAG ----
  maxHops: number;
  topKPerHop: number;
  useRewards: boolean;
  /** SFT steps on multi-hop trajectories */
  refragSteps: number;
  /** learning-rate multiplier of the REFRAG SFT stage (it starts from a fine-tuned model) */
  refragLrFrac: number;
  rlSteps: number;
  /** questions per RL step */
  rlQuestions: number;
  /** trajectories sampled per question (GRPO group) */
  groupSize: number;
  temperature: number;
  maxNewTokens: number;
  wAnswer: number;
  wCite: number;
  wRetrieval: number;
  wHop: number;
  /** KL penalty toward the SFT model (0 = off) */
  klCoef: number;
  rlLrFrac: number;
}

export const DEFAULTS: TrainConfig = {
  blockPattern: "TM",
  nEmbd: 128,
  nHead: 4,
  nKvHead: 4,
  mlpHidden: 0,
  mambaDState: 16,
  mambaDConv: 4,
  mambaExpand: 2,
  mambaUseMlp: false,
  seqLen: 256,
  logitSoftcap: 15,
  ropeBase: 10000,
  lrEmbed: 0.2,
  lrHead: 0.004,
  lrMatrix: 0.02,
  lrVector: 3e-3,
  initLrFrac: 1,
  beta1: 0.8,
  beta2: 0.95,
  weightDecay: 0,
  muonMomentum: 0.95,
  gradClip: 1,
  steps: 200,
  deviceBatch: 8,
  gradAccum: 1,
  warmupSteps: 10,
  warmdownFrac: 0.3,
  finalLrFrac: 0.05,
  evalEvery: 50,
  evalBatches: 2,
  evalQuestions: 20,
  saveEvery: 100,
  seed: 0,
  threads: 0,
  recompute: false,
  pack: true,
  retriever: "bm25",
  topK: 3,
  qaPerContext: 4,
  distractors: 2,
  abstainRate: 0.1,
  curriculumFrac: 0.3,
  readTwice: true,
  augment: 0.9,
  augmentNouns: 0,
  multiHopRate: 0,
  pretrainSteps: 0,
  pretrainCopy: false,
  maxHops: 3,
  topKPerHop: 3,
  useRewards: false,
  refragSteps: 100,
  refragLrFrac: 0.3,
  rlSteps: 20,
  rlQuestions: 4,
  groupSize: 4,
  temperature: 1,
  maxNewTokens: 40,
  wAnswer: 0.6,
  wCite: 0.2,
  wRetrieval: 0.2,
  wHop: 0.05,
  klCoef: 0,
  rlLrFrac: 0.1,
};

export const KEYS = Object.keys(DEFAULTS) as (keyof TrainConfig)[];

export const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Checks a partial config: unknown keys and wrong types are UserErrors naming the key. */
export function checkPartial(o: Record<string, unknown>, where: string): Partial<TrainConfig> {
  for (const [k, v] of Object.entries(o)) {
    if (!(k in DEFAULTS)) throw new UserError(`${where}: unknown config key "${k}" (known: ${KEYS.join(", ")})`);
    const want = typeof DEFAULTS[k as keyof TrainConfig];
    if (typeof v !== want) throw new UserError(`${where}: config key "${k}" must be a ${want}, got ${JSON.stringify(v)}`);
    if (want === "number" && !Number.isFinite(v as number)) throw new UserError(`${where}: config key "${k}" must be finite`);
  }
  return o as Partial<TrainConfig>;
}

/** Parses a flag value to the type of `key`. */
export function parseValue(key: keyof TrainConfig, raw: string): TrainConfig[keyof TrainConfig] {
  const want = typeof DEFAULTS[key];
  if (want === "number") {
    const n = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(n)) throw new UserError(`--${kebab(key)} must be a number, got "${raw}"`);
    return n;
  }
  if (want === "boolean") {
    if (["true", "1", "yes"].includes(raw)) return true;
    if (["false", "0", "no"].includes(raw)) return false;
    throw new UserError(`--${kebab(key)} must be true or false, got "${raw}"`);
  }
  return raw;
}

const INTS: (keyof TrainConfig)[] = [
  "nEmbd", "nHead", "nKvHead", "mlpHidden", "mambaDState", "mambaDConv", "mambaExpand", "seqLen", "steps", "deviceBatch", "gradAccum",
  "warmupSteps", "evalEvery", "evalBatches", "evalQuestions", "saveEvery", "seed", "threads", "topK", "qaPerContext", "distractors",
  "pretrainSteps", "maxHops", "topKPerHop", "refragSteps", "rlSteps", "rlQuestions", "groupSize", "maxNewTokens",
];
const POSITIVE: (keyof TrainConfig)[] = ["nEmbd", "nHead", "nKvHead", "seqLen", "deviceBatch", "gradAccum", "evalEvery", "saveEvery", "topK", "qaPerContext", "topKPerHop", "groupSize", "maxNewTokens"];
const FRACTIONS: (keyof TrainConfig)[] = ["augment", "augmentNouns", "warmdownFrac", "finalLrFrac", "abstainRate", "curriculumFrac", "multiHopRate"];

/** Validates a whole config. */
export function validate(c: TrainConfig): TrainConfig {
  for (const k of INTS) if (!Number.isInteger(c[k]) || (c[k] as number) < 0) throw new UserError(`config key "${k}" must be a non-negative integer, got ${c[k]}`);
  for (const k of POSITIVE) if ((c[k] as number) < 1) throw new UserError(`config key "${k}" must be >= 1, got ${c[k]}`);
  for (const k of FRACTIONS) if (!((c[k] as number) >= 0 && (c[k] as number) <= 1)) throw new UserError(`config key "${k}" must be in [0, 1], got ${c[k]}`);
  if (!/^[TM]+$/.test(c.blockPattern)) throw new UserError(`config key "blockPattern" must be letters T and M, got "${c.blockPattern}"`);
  if (c.seqLen < 16) throw new UserError(`config key "seqLen" must be >= 16, got ${c.seqLen}`);
  return c;
}

/** The engine's model config for this training config and a tokenizer's vocabulary size. */
export function modelConfig(c: TrainConfig, vocabSize: number): ModelConfig {
  return {
    vocab_size: vocabSize,
    n_layer: c.blockPattern.length,
    n_embd: c.nEmbd,
    n_head: c.nHead,
    n_kv_head: c.nKvHead,
    block_pattern: c.blockPattern,
    sequence_len: Math.max(c.seqLen, 1024),
    mlp_hidden: c.mlpHidden || 4 * c.nEmbd,
    mamba_d_state: c.mambaDState,
    mamba_d_conv: c.mambaDConv,
    mamba_expand: c.mambaExpand,
    mamba_dt_rank: "auto",
    mamba_use_mlp: c.mambaUseMlp,
    rope_base: c.ropeBase,
    logit_softcap: c.logitSoftcap,
    norm_eps: 1e-6,
  };
}

import cpuTiny from "../../configs/cpu_tiny.ts";
import cpuSmall from "../../configs/cpu_small.ts";
import ragHybridD20 from "../../configs/rag_hybrid_d20.ts";
import ragMambaD20 from "../../configs/rag_mamba_d20.ts";
import refragHybridD20 from "../../configs/refrag_hybrid_d20.ts";

/** The named configs shipped in configs/ (compiled into the binary). */
export const NAMED: Record<string, Partial<TrainConfig>> = {
  cpu_tiny: cpuTiny,
  cpu_small: cpuSmall,
  rag_hybrid_d20: ragHybridD20,
  rag_mamba_d20: ragMambaD20,
  refrag_hybrid_d20: refragHybridD20,
};

/** A named config, or a .ts/.js/.json file exporting a partial config (default export). */
export async function loadNamed(spec: string | undefined, fallback = "cpu_small"): Promise<Partial<TrainConfig>> {
  const name = spec ?? fallback;
  if (NAMED[name]) return checkPartial({ ...NAMED[name] }, `config ${name}`);
  const path = resolve(name);
  if (!existsSync(path)) throw new UserError(`--config: "${name}" is neither a named config (${Object.keys(NAMED).join(", ")}) nor a file`);
  const mod = name.endsWith(".json") ? { default: await Bun.file(path).json() } : await import(path);
  const o = mod.default ?? mod;
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new UserError(`${name}: a config file must export an object`);
  return checkPartial({ ...o }, name);
}

/** Defaults <- named config <- overrides (flags). */
export function buildConfig(named: Partial<TrainConfig>, overrides: Partial<TrainConfig>): TrainConfig {
  return validate({ ...DEFAULTS, ...named, ...overrides });
}

/** citty args for every config key, so each can be overridden by its own flag. */
export function configArgs(): Record<string, { type: "string" | "boolean"; description: string; valueHint?: string }> {
  const out: Record<string, { type: "string" | "boolean"; description: string; valueHint?: string }> = {};
  for (const k of KEYS) {
    const d = `config key ${k} (built-in default ${JSON.stringify(DEFAULTS[k])}; --config may set another)`;
    out[kebab(k)] = typeof DEFAULTS[k] === "boolean" ? { type: "boolean", description: d } : { type: "string", description: d, valueHint: typeof DEFAULTS[k] === "string" ? "S" : "N" };
  }
  return out;
}

/** Reads the config flags given on the command line. */
export function configOverrides(args: Record<string, unknown>): Partial<TrainConfig> {
  const o: Record<string, unknown> = {};
  for (const k of KEYS) {
    const v = args[kebab(k)] ?? args[k];
    if (typeof v === "string") o[k] = parseValue(k, v);
    else if (typeof v === "boolean" && typeof DEFAULTS[k] === "boolean") o[k] = v;
  }
  return o as Partial<TrainConfig>;
}
