/**
 * High-level entry points behind `nanorag pretrain`, `nanorag train [--refrag]` and `nanorag
 * pipeline`: tokenizer and model set-up, stage sequencing, resume, and the final quality table.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { UserError } from "../errors.ts";
import { loadCheckpoint, type Model, setThreads } from "../engine/index.ts";
import type { Kb } from "../kb/kb.ts";
import { log } from "../log.ts";
import type { QuestionRow } from "../data/schema.ts";
import { answerSettings, formatQuality, type AnswerMode, qualityTable, type QualityTable } from "../eval/answers.ts";
import type { RagDoc } from "../rag/template.ts";
import { Tokenizer } from "../tokenizer/bpe.ts";
import { trainBpe } from "../tokenizer/train.ts";
import { modelConfig, type TrainConfig } from "./config.ts";
import { type Dataset, docText, kbSearch, RagSource, trainingDocuments } from "./data.ts";
import { checkpointConfig, checkpointWorld, latestCheckpointDir, loadResume, type LoopResult, type LoopState } from "./loop.ts";
import { Wandb } from "./report.ts";
import type { ProcessGroup } from "./parallel/group.ts";
import { newModel, pretrainStage, ragStage, rlStage, type StageContext } from "./stages.ts";

export interface CommonOptions {
  cfg: TrainConfig;
  outDir: string;
  resume?: boolean;
  wandb?: string;
  quiet?: boolean;
  /** tests: stop each stage after this many steps (as if interrupted) */
  stopAfter?: number;
  /** the ranks of a multi-process job (src/train/parallel/worker.ts); rank 0 alone writes files and logs */
  group?: ProcessGroup | null;
}

export function applyThreads(cfg: TrainConfig): void {
  if (cfg.threads > 0) setThreads(cfg.threads);
}

/** Trains a BPE tokenizer on texts and saves it (unless path is null: ranks other than 0 keep theirs in memory). */
export function trainTokenizer(texts: string[], vocabSize: number, path: string | null): Tokenizer {
  const { tokenizer, stats } = trainBpe(texts, { vocabSize });
  if (path === null) return tokenizer;
  tokenizer.save(path);
  log.info(`tokenizer: ${tokenizer.vocabSize} tokens (${stats.merges} merges over ${(stats.inputBytes / 1e6).toFixed(2)} MB) -> ${path}`);
  return tokenizer;
}

/** A model from "scratch" or a checkpoint folder (weights only: a new stage starts a fresh optimizer). */
export function sourceModel(source: string, cfg: TrainConfig, vocab: number): { model: Model; meta: Record<string, unknown> } {
  if (source === "scratch") return { model: newModel(cfg, vocab), meta: {} };
  const dir = existsSync(join(source, "config.json")) ? source : join(source, "checkpoints", "final");
  if (!existsSync(join(dir, "config.json"))) throw new UserError(`--source ${source}: not a checkpoint folder (no config.json there or under checkpoints/final)`);
  const { model, meta } = loadCheckpoint(dir, { optimizer: false });
  model.optStep = 0;
  if (model.config.vocab_size !== vocab) {
    model.free();
    throw new UserError(`--source ${source}: the checkpoint's vocabulary (${model.config.vocab_size}) does not match the tokenizer's (${vocab})`);
  }
  return { model, meta };
}

/** Resume: the saved config must match the one given now (steps may grow), and so must the number of processes (it sets the batch). */
function checkResumeConfig(dir: string, cfg: TrainConfig, group: ProcessGroup | null | undefined): void {
  const saved = checkpointConfig(dir);
  if (!saved) return;
  const diff = Object.keys(cfg).filter((k) => !["steps", "rlSteps", "refragSteps", "pretrainSteps", "evalEvery", "saveEvery", "evalQuestions", "threads", "recompute"].includes(k) && JSON.stringify(saved[k]) !== JSON.stringify(cfg[k as keyof TrainConfig]));
  if (diff.length) throw new UserError(`--resume: config differs from the checkpoint's in ${diff.join(", ")}; resume with the same settings`);
  const [was, now] = [checkpointWorld(dir), group?.world ?? 1];
  if (was !== now) throw new UserError(`--resume: ${dir} was trained by ${was} process(es), this run has ${now}; the batch (device batch x processes) would change, so resume with the same --nproc-per-node and --nnodes`);
}

/** With --resume: the stage's latest checkpoint (repaired if a kill interrupted its save), checked against this run; null when there is none. */
function stageResume(outDir: string, want: boolean, cfg: TrainConfig, group: ProcessGroup | null | undefined): { model: Model; state: LoopState } | null {
  if (!want) return null;
  const dir = latestCheckpointDir(outDir);
  if (!existsSync(join(dir, "config.json"))) return null;
  checkResumeConfig(dir, cfg, group);
  const r = loadResume(dir);
  log.info(`resuming ${outDir} at step ${r.state.step}`);
  return { model: r.model, state: r.state };
}

export interface PretrainOptions extends CommonOptions {
  texts: string[];
  valTexts?: string[];
  tokenizer?: string;
  vocabSize?: number;
  steps?: number;
}

export async function runPretrain(o: PretrainOptions): Promise<{ model: Model; tokenizerPath: string; result: LoopResult }> {
  mkdirSync(o.outDir, { recursive: true });
  applyThreads(o.cfg);
  let tokenizerPath = o.tokenizer ? resolve(o.tokenizer) : join(resolve(o.outDir), "tokenizer.json");
  const lead = !o.group || o.group.lead;
  let tok: Tokenizer;
  if (o.tokenizer) tok = Tokenizer.load(o.tokenizer);
  // other ranks train the same tokenizer in memory rather than read a file rank 0 may be writing
  else if (existsSync(tokenizerPath) && lead) tok = Tokenizer.load(tokenizerPath);
  else tok = trainTokenizer(o.texts, o.vocabSize ?? 2048, lead ? tokenizerPath : null);
  await o.group?.agree("tokenizer", String(Bun.hash(JSON.stringify(tok.toFile()))));
  const res = stageResume(o.outDir, Boolean(o.resume), o.cfg, o.group);
  const model = res?.model ?? newModel(o.cfg, tok.vocabSize);
  const wandb = new Wandb(lead ? o.wandb : undefined);
  await wandb.init(`pretrain-${Date.now()}`, o.cfg as unknown as Record<string, unknown>);
  const ctx: StageContext = { cfg: o.cfg, tok, outDir: o.outDir, meta: { tokenizer: tokenizerPath, kind: "pretrain" }, wandb, resume: res?.state, stopAfter: o.stopAfter, quiet: o.quiet, group: o.group };
  const result = await pretrainStage(ctx, model, o.texts, o.valTexts ?? [], o.steps ?? o.cfg.steps);
  return { model, tokenizerPath, result };
}

export interface TrainOptions extends CommonOptions {
  ds: Dataset;
  kb: Kb;
  tokenizer?: string;
  source: string;
  refrag?: boolean;
}

export interface TrainResult {
  model: Model;
  tokenizer: Tokenizer;
  tokenizerPath: string;
  results: Record<string, LoopResult>;
  interrupted: boolean;
  retrieve: (q: string, k: number) => Promise<RagDoc[]>;
}

/** `nanorag train` (RAG SFT) and `nanorag train --refrag` (multi-hop SFT, then RL with --use-rewards). */
export async function runTrain(o: TrainOptions): Promise<TrainResult> {
  const { cfg } = o;
  mkdirSync(o.outDir, { recursive: true });
  applyThreads(cfg);
  let tokenizerPath = o.tokenizer ? resolve(o.tokenizer) : "";
  if (!tokenizerPath && o.source !== "scratch") {
    const dir = existsSync(join(o.source, "config.json")) ? o.source : join(o.source, "checkpoints", "final");
    const saved = (checkpointConfig(dir) ? (JSON.parse(await Bun.file(join(dir, "config.json")).text()).meta?.tokenizer as string | undefined) : undefined) ?? "";
    tokenizerPath = saved;
  }
  if (!tokenizerPath || !existsSync(tokenizerPath)) throw new UserError("--tokenizer FILE is required (or a --source checkpoint that names its tokenizer)");
  const tok = Tokenizer.load(tokenizerPath);
  const { search, docs: retrieve, cache } = kbSearch(o.kb, cfg.retriever);
  const srcOpts = { seqLen: cfg.seqLen, qaPerContext: cfg.qaPerContext, topK: cfg.topK, distractors: cfg.distractors, abstainRate: cfg.abstainRate, readTwice: cfg.readTwice, multiHopRate: cfg.multiHopRate, seed: cfg.seed, augment: cfg.augment, augmentNouns: cfg.augmentNouns };
  const wandb = new Wandb(!o.group || o.group.lead ? o.wandb : undefined);
  await wandb.init(`${o.refrag ? "refrag" : "rag"}-${Date.now()}`, cfg as unknown as Record<string, unknown>);
  const meta = { tokenizer: tokenizerPath, kind: o.refrag ? "refrag" : "rag", retriever: cfg.retriever };
  const valSingle = o.ds.val.filter((q) => q.type === "single" || q.type === "unanswerable");
  const results: Record<string, LoopResult> = {};
  const stageDirs = o.refrag ? { sft: join(o.outDir, "sft"), rl: join(o.outDir, "rl") } : { sft: o.outDir, rl: "" };
  let model: Model | null = null;

  // Stage 1: SFT (single-hop RAG; with --refrag, multi-hop trajectories mixed in).
  const sftDone = existsSync(join(stageDirs.sft, "checkpoints", "final", "config.json")) && o.resume;
  if (sftDone) {
    model = loadCheckpoint(join(stageDirs.sft, "checkpoints", "final")).model;
    log.info(`${stageDirs.sft}: SFT already finished; continuing from its final checkpoint`);
  } else {
    const res = stageResume(stageDirs.sft, Boolean(o.resume), cfg, o.group);
    model = res?.model ?? sourceModel(o.source, cfg, tok.vocabSize).model;
    const refragCfg = o.refrag ? { ...cfg, multiHopRate: Math.max(cfg.multiHopRate, 0.5) } : cfg;
    const source = new RagSource(tok, o.ds.train, o.ds.docs, retrieve, search, cache, { ...srcOpts, multiHopRate: refragCfg.multiHopRate }, cfg.retriever);
    const valSource = o.ds.val.length ? new RagSource(tok, o.ds.val, o.ds.docs, retrieve, search, cache, { ...srcOpts, multiHopRate: refragCfg.multiHopRate, seed: cfg.seed + 99, augment: 0 }, cfg.retriever) : null;
    const valQs = o.refrag ? interleave(o.ds.val.filter((q) => q.type === "bridge"), valSingle) : valSingle;
    const r = await ragStage({ cfg: refragCfg, tok, outDir: stageDirs.sft, meta, wandb, resume: res?.state, stopAfter: o.stopAfter, quiet: o.quiet, group: o.group }, model, {
      stage: o.refrag ? "refrag-sft" : "rag",
      steps: o.refrag ? cfg.refragSteps : cfg.steps,
      source,
      valSource,
      valQuestions: valQs,
      retrieve,
      evalMode: o.refrag ? "refrag" : "rag",
      curriculumFrac: o.refrag ? 0 : cfg.curriculumFrac,
      lrFrac: o.refrag ? cfg.refragLrFrac : 1,
    });
    results.sft = r;
    if (r.interrupted) return { model, tokenizer: tok, tokenizerPath, results, interrupted: true, retrieve };
  }

  // Stage 2: RL with retrieval in the loop.
  if (o.refrag && cfg.useRewards && cfg.rlSteps > 0) {
    const res = stageResume(stageDirs.rl, Boolean(o.resume), cfg, o.group);
    if (res) {
      model.free();
      model = res.model;
    }
    const ref = cfg.klCoef > 0 ? loadCheckpoint(join(stageDirs.sft, "checkpoints", "final"), { optimizer: false }).model : null;
    if (!res) {
      // a fresh optimizer for RL
      model.download();
      model.optM.fill(0);
      model.optV.fill(0);
      model.upload();
      model.optStep = 0;
    }
    const rlQs = o.ds.train.filter((q) => q.type === "bridge" || q.type === "single" || q.type === "unanswerable");
    const valQs = interleave(o.ds.val.filter((q) => q.type === "bridge"), valSingle);
    const r = await rlStage({ cfg, tok, outDir: stageDirs.rl, meta, wandb, resume: res?.state, stopAfter: o.stopAfter, quiet: o.quiet, gstep0: cfg.refragSteps, group: o.group }, model, ref, interleave(rlQs.filter((q) => q.type === "bridge"), rlQs.filter((q) => q.type !== "bridge")), retrieve, valQs);
    ref?.free();
    results.rl = r;
    if (r.interrupted) return { model, tokenizer: tok, tokenizerPath, results, interrupted: true, retrieve };
  }
  return { model, tokenizer: tok, tokenizerPath, results, interrupted: false, retrieve };
}

/** Alternates two lists (a0, b0, a1, b1, ...), then the rest. */
export function interleave<T>(a: T[], b: T[]): T[] {
  const out: T[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < a.length) out.push(a[i]!);
    if (i < b.length) out.push(b[i]!);
  }
  return out;
}

/** The quality table on a question set, written to `path` as JSON as well. */
export async function quality(model: Model, tok: Tokenizer, qs: QuestionRow[], retrieve: (q: string, k: number) => Promise<RagDoc[]>, cfg: TrainConfig, modes: AnswerMode[], path?: string): Promise<QualityTable> {
  const { table, records } = await qualityTable(model, tok, qs, modes, {
    retrieve,
    ...answerSettings(cfg),
  });
  if (path) writeFileSync(path, `${JSON.stringify({ table, records }, null, 1)}\n`);
  return table;
}

export { formatQuality, modelConfig, docText, trainingDocuments };
