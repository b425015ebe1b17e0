/**
 * Finding and loading what answering needs from a --model path: a checkpoint folder, or a run folder
 * holding one (checkpoints/final; for a REFRAG run rl/ then sft/), its tokenizer, and the answer
 * settings its training config implies.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { UserError } from "../errors.ts";
import { loadCheckpoint, type Model } from "../engine/index.ts";
import { answerSettings } from "../eval/answers.ts";
import { DEFAULTS, type TrainConfig } from "../train/config.ts";
import { Tokenizer } from "../tokenizer/bpe.ts";
import { usableLen } from "../train/generate.ts";
import type { AnswerSettings } from "./answer.ts";

const CANDIDATES = ["", "checkpoints/final", "rl/checkpoints/final", "sft/checkpoints/final"];

/** The checkpoint folder a --model path names. */
export function checkpointDir(path: string): string {
  if (!existsSync(path)) throw new UserError(`--model ${path}: no such file or folder`);
  for (const c of CANDIDATES) if (existsSync(join(path, c, "config.json"))) return join(path, c);
  throw new UserError(`--model ${path}: not a checkpoint (no config.json in it or under ${CANDIDATES.slice(1).join(", ")})`);
}

export interface LoadedModel {
  model: Model;
  tokenizer: Tokenizer;
  /** the checkpoint folder */
  dir: string;
  /** answer settings from the training config (defaults where the checkpoint has none), maxLen within the model's positions */
  settings: AnswerSettings;
  /** the retriever the model was trained with */
  retriever: string;
  /** the model's trained context length */
  seqLen: number;
}

export function loadModel(path: string, tokenizerPath?: string): LoadedModel {
  const dir = checkpointDir(path);
  const { model, meta } = loadCheckpoint(dir, { optimizer: false });
  try {
    const named = tokenizerPath ?? (typeof meta.tokenizer === "string" ? resolve(dir, meta.tokenizer) : undefined);
    if (!named) throw new UserError(`--model ${path}: the checkpoint names no tokenizer; pass --tokenizer FILE`);
    if (!existsSync(named)) throw new UserError(`${tokenizerPath ? "--tokenizer" : `--model ${path}: its tokenizer`} ${named} does not exist${tokenizerPath ? "" : "; pass --tokenizer FILE"}`);
    const tokenizer = Tokenizer.load(named);
    if (tokenizer.vocabSize !== model.config.vocab_size) {
      throw new UserError(`--model ${path}: the model's vocabulary (${model.config.vocab_size}) does not match the tokenizer's (${tokenizer.vocabSize}, ${named})`);
    }
    const cfg = { ...DEFAULTS, ...((meta.config ?? {}) as Partial<TrainConfig>) };
    const settings = answerSettings(cfg);
    return { model, tokenizer, dir, settings: { ...settings, maxLen: usableLen(model, settings.maxLen) }, retriever: cfg.retriever, seqLen: cfg.seqLen };
  } catch (e) {
    model.free();
    throw e;
  }
}
