/**
 * The training stages the CLI runs: pretraining (language model on text), RAG SFT (dense supervision
 * with a curriculum), REFRAG SFT (multi-hop trajectories mixed with single-hop RAG) and the RL stage
 * (GRPO-style, retrieval in the loop).
 */
import { Model, Sampler } from "../engine/index.ts";
import { prng, shuffle } from "../data/random.ts";
import type { QuestionRow } from "../data/schema.ts";
import { answerQuestions, answerSettings } from "../eval/answers.ts";
import { summarize } from "../rag/metrics.ts";
import { groupAdvantages, reward, type RewardWeights } from "../rag/rewards.ts";
import type { RagDoc, TemplateTokenizer } from "../rag/template.ts";
import { assemble, type Example, type MicroBatch, nextMicroBatch } from "./batch.ts";
import { modelConfig, type TrainConfig } from "./config.ts";
import { type Phase, type RagSource, TextSource } from "./data.ts";
import { citedIds, generate } from "./generate.ts";
import { type LoopResult, type LoopState, type StepBatch, trainLoop } from "./loop.ts";
import type { Wandb } from "./report.ts";
import type { ProcessGroup } from "./parallel/group.ts";

export interface StageContext {
  cfg: TrainConfig;
  tok: TemplateTokenizer & { vocabSize: number };
  outDir: string;
  meta?: Record<string, unknown>;
  wandb?: Wandb;
  resume?: LoopState | null;
  gstep0?: number;
  stopAfter?: number;
  quiet?: boolean;
  /** the ranks of a multi-process job (null: this process alone) */
  group?: ProcessGroup | null;
}

/** What every stage passes through to the loop unchanged. */
function loopContext(ctx: StageContext) {
  return { outDir: ctx.outDir, meta: ctx.meta, resume: ctx.resume, gstep0: ctx.gstep0, wandb: ctx.wandb, stopAfter: ctx.stopAfter, quiet: ctx.quiet, group: ctx.group };
}

/** Rows of one global micro-batch: deviceBatch per rank. */
function globalRows(ctx: StageContext): number {
  return ctx.cfg.deviceBatch * (ctx.group?.world ?? 1);
}

export function newModel(cfg: TrainConfig, vocabSize: number): Model {
  return Model.create(modelConfig(cfg, vocabSize), cfg.seed);
}

async function microBatches(get: (p: number) => Promise<Example | null>, cursor: number, cfg: TrainConfig, rows: number, padId: number, pack = cfg.pack): Promise<{ micro: MicroBatch[]; cursor: number }> {
  const micro: MicroBatch[] = [];
  for (let a = 0; a < cfg.gradAccum; a++) {
    const r = await nextMicroBatch(get, cursor, rows, cfg.seqLen, padId, pack);
    micro.push(r.batch);
    cursor = r.cursor;
  }
  return { micro, cursor };
}

/** Weighted mean loss over fixed batches, without gradients. */
export function evalLoss(model: Model, batches: MicroBatch[]): number {
  let l = 0, w = 0;
  for (const b of batches) {
    const r = model.eval(b.tokens, b.targets, b.B, b.T, { weights: b.weights });
    l += r.lossSum;
    w += r.weightSum;
  }
  return w ? l / w : Number.NaN;
}

/** Language-model pretraining on plain texts (every token trained). */
export async function pretrainStage(ctx: StageContext, model: Model, texts: string[], valTexts: string[], steps: number): Promise<LoopResult> {
  const { cfg, tok } = ctx;
  const bos = tok.specialId("<|bos|>");
  const src = new TextSource(tok, texts, cfg.seed, cfg.pretrainCopy);
  const val = valTexts.length ? new TextSource(tok, valTexts, cfg.seed + 1, cfg.pretrainCopy) : null;
  const valBatches: MicroBatch[] = [];
  if (val) {
    let c = 0;
    for (let i = 0; i < cfg.evalBatches; i++) {
      const r = await nextMicroBatch(async (p) => val.get(p), c, cfg.deviceBatch, cfg.seqLen, bos, true);
      valBatches.push(r.batch);
      c = r.cursor;
    }
  }
  return trainLoop({
    stage: "pretrain",
    model,
    cfg,
    steps,
    ...loopContext(ctx),
    bestKey: valBatches.length ? "val_loss" : undefined,
    nextStep: async (_step, cursor): Promise<StepBatch> => microBatches(async (p) => src.get(p), cursor, cfg, globalRows(ctx), bos, true),
    evaluate: valBatches.length ? async () => ({ val_loss: evalLoss(model, valBatches) }) : undefined,
  });
}

export interface RagStageOptions {
  stage: string;
  steps: number;
  source: RagSource;
  valSource?: RagSource | null;
  /** questions answered (greedy) at each evaluation */
  valQuestions?: QuestionRow[];
  retrieve?: ((q: string, k: number) => Promise<RagDoc[]>) | null;
  /** answer mode at evaluation */
  evalMode?: "rag" | "refrag";
  /** fraction of steps on gold-only contexts */
  curriculumFrac: number;
  /** learning-rate multiplier for this stage */
  lrFrac?: number;
}

/** Supervised fine-tuning on rendered RAG conversations (weights from the template). */
export async function ragStage(ctx: StageContext, model: Model, o: RagStageOptions): Promise<LoopResult> {
  const { cfg, tok } = ctx;
  const bos = tok.specialId("<|bos|>");
  const goldSteps = Math.round(o.curriculumFrac * o.steps);
  const valBatches: MicroBatch[] = [];
  if (o.valSource) {
    let c = 0;
    for (let i = 0; i < cfg.evalBatches; i++) {
      const r = await nextMicroBatch((p) => o.valSource!.example(p, "full"), c, cfg.deviceBatch, cfg.seqLen, bos, cfg.pack);
      valBatches.push(r.batch);
      c = r.cursor;
    }
  }
  const evalQs = (o.valQuestions ?? []).slice(0, cfg.evalQuestions);
  return trainLoop({
    stage: o.stage,
    model,
    cfg,
    steps: o.steps,
    lrFrac: o.lrFrac,
    ...loopContext(ctx),
    bestKey: evalQs.length ? "val_em" : valBatches.length ? "val_loss" : undefined,
    bestHigher: evalQs.length > 0,
    nextStep: async (step, cursor) => {
      const phase: Phase = step < goldSteps ? "gold" : "full";
      return microBatches((p) => o.source.example(p, phase), cursor, cfg, globalRows(ctx), bos);
    },
    evaluate: async () => {
      const out: Record<string, number> = {};
      if (valBatches.length) out.val_loss = evalLoss(model, valBatches);
      if (evalQs.length && o.retrieve) {
        const rs = await answerQuestions(model, tok, evalQs, {
          mode: o.evalMode ?? "rag",
          retrieve: o.retrieve,
          ...answerSettings(cfg),
        });
        const s = summarize(rs);
        out.val_em = Number.isNaN(s.em) ? 0 : s.em;
        out.val_f1 = Number.isNaN(s.f1) ? 0 : s.f1;
      }
      return out;
    },
  });
}

export interface Rollout {
  question: QuestionRow;
  ids: number[];
  weights: Float32Array;
  parts: { answer: number; cite: number; retrieval: number; hops: number; total: number };
  answer: string;
}

/** G sampled trajectories per question with retrieval in the loop, and their rewards. */
export async function rollouts(model: Model, tok: TemplateTokenizer, qs: QuestionRow[], retrieve: (q: string, k: number) => Promise<RagDoc[]>, cfg: TrainConfig, sampler: Sampler, temperature = cfg.temperature): Promise<Rollout[]> {
  const w: RewardWeights = { wAnswer: cfg.wAnswer, wCite: cfg.wCite, wRetrieval: cfg.wRetrieval, wHop: cfg.wHop, maxHops: cfg.maxHops };
  const out: Rollout[] = [];
  for (const q of qs) {
    const first = await retrieve(q.question, cfg.topK);
    for (let g = 0; g < cfg.groupSize; g++) {
      const gen = await generate(model, tok, { messages: [{ role: "user", content: q.question }, { role: "docs", docs: first }] }, {
        maxNewTokens: cfg.maxNewTokens,
        temperature,
        sampler,
        search: (query) => retrieve(query, cfg.topKPerHop + 2),
        maxHops: cfg.maxHops,
        topKPerHop: cfg.topKPerHop,
        maxLen: cfg.seqLen + 1,
        readTwice: cfg.readTwice,
      });
      const c = citedIds(gen.answer, gen.docs);
      const parts = reward({ answer: gen.answer, citedIds: c.ids, invalidCitations: c.invalid, contextIds: gen.docs.map((d) => d.id), hops: gen.hops }, q, w);
      out.push({ question: q, ids: gen.ids, weights: gen.weights, parts, answer: gen.answer });
    }
  }
  return out;
}

/**
 * Turns rollouts into micro-batches for the policy-gradient step: one trajectory per row; the weight
 * of each sampled token is its trajectory's group-normalised advantage (minus klCoef times the
 * per-token log-ratio to the reference model when one is given); prompt and injected documents get 0.
 */
export function policyBatches(model: Model, ref: Model | null, rs: Rollout[], cfg: TrainConfig, padId: number): { micro: MicroBatch[]; sampled: number; kl: number } {
  const adv = groupAdvantages(rs.map((r) => r.parts.total), cfg.groupSize);
  const micro: MicroBatch[] = [];
  let sampled = 0, klSum = 0, klN = 0;
  for (let s = 0; s < rs.length; s += cfg.deviceBatch) {
    const chunk = rs.slice(s, s + cfg.deviceBatch);
    // mask first (weight 1 on sampled tokens), so targets stay valid where the advantage is 0
    const mb = assemble(chunk.map((r) => [{ ids: r.ids, weights: r.weights }]), cfg.deviceBatch, cfg.seqLen, padId);
    let lp: Float32Array | undefined, lpRef: Float32Array | undefined;
    if (ref && cfg.klCoef > 0) {
      lp = model.eval(mb.tokens, mb.targets, mb.B, mb.T, { tokenLogprobs: true }).logprobs;
      lpRef = ref.eval(mb.tokens, mb.targets, mb.B, mb.T, { tokenLogprobs: true }).logprobs;
    }
    let ws = 0;
    for (let r = 0; r < mb.B; r++) {
      const a = r < chunk.length ? adv[s + r]! : 0;
      for (let j = 0; j < mb.T; j++) {
        const i = r * mb.T + j;
        if (mb.targets[i]! < 0) continue;
        sampled++;
        let w = a;
        if (lp && lpRef) {
          const d = lp[i]! - lpRef[i]!;
          klSum += d;
          klN++;
          w -= cfg.klCoef * d;
        }
        mb.weights[i] = w;
        ws += w;
      }
    }
    mb.weightSum = ws;
    micro.push(mb);
  }
  return { micro, sampled, kl: klN ? klSum / klN : 0 };
}

/** GRPO-style RL with retrieval in the loop. */
export async function rlStage(ctx: StageContext, model: Model, ref: Model | null, qs: QuestionRow[], retrieve: (q: string, k: number) => Promise<RagDoc[]>, valQs: QuestionRow[]): Promise<LoopResult> {
  const { cfg, tok } = ctx;
  const bos = tok.specialId("<|bos|>");
  const order = shuffle(qs.map((_, i) => i), prng(cfg.seed, 0x41));
  const evalQs = valQs.slice(0, cfg.evalQuestions);
  return trainLoop({
    stage: "rl",
    model,
    cfg: { ...cfg, warmupSteps: 0 },
    steps: cfg.rlSteps,
    lrFrac: cfg.rlLrFrac,
    ...loopContext(ctx),
    bestKey: evalQs.length ? "val_reward" : undefined,
    bestHigher: true,
    nextStep: async (step, cursor) => {
      const batchQs = Array.from({ length: cfg.rlQuestions }, (_, i) => qs[order[(cursor + i) % qs.length]!]!);
      const sampler = new Sampler(BigInt(cfg.seed) * 1000003n + BigInt(step));
      const rs = await rollouts(model, tok, batchQs, retrieve, cfg, sampler);
      const { micro, sampled, kl } = policyBatches(model, ref, rs, { ...cfg, deviceBatch: globalRows(ctx) }, bos);
      const m = (f: (r: Rollout) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length;
      return {
        micro,
        cursor: cursor + cfg.rlQuestions,
        gradScale: sampled ? 1 / sampled : 0,
        metrics: { reward: m((r) => r.parts.total), r_answer: m((r) => r.parts.answer), r_cite: m((r) => r.parts.cite), r_retrieval: m((r) => r.parts.retrieval), r_hops: m((r) => r.parts.hops), kl },
      };
    },
    evaluate: evalQs.length
      ? async () => {
          const rs = await rollouts(model, tok, evalQs, retrieve, { ...cfg, groupSize: 1 }, new Sampler(0), 0);
          return { val_reward: rs.reduce((a, r) => a + r.parts.total, 0) / rs.length, val_em: rs.filter((r) => r.question.answerable).reduce((a, r) => a + (r.parts.answer === 1 ? 1 : 0), 0) / Math.max(1, rs.filter((r) => r.question.answerable).length) };
        }
      : undefined,
  });
}
