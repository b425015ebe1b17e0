/**
 * The main job in one call: prepare a synthetic world -> build the KB -> train a tokenizer on the KB
 * text (test entities' documents left out) -> pretrain a small hybrid on that text -> RAG SFT ->
 * REFRAG (multi-hop SFT, then RL) -> the quality table on held-out test entities, with and without
 * retrieval.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { prepare } from "../data/prepare.ts";
import { readDocuments } from "../data/schema.ts";
import { type QuestionRow } from "../data/schema.ts";
import { flopsPerToken } from "../engine/index.ts";
import { Kb } from "../kb/kb.ts";
import { log } from "../log.ts";
import { loadPlugins } from "../retrieval/host.ts";
import { formatQuality, type QualityTable } from "../eval/answers.ts";
import type { TrainConfig } from "./config.ts";
import { docText, loadDataset, trainingDocuments } from "./data.ts";
import { loadCheckpoint, Sampler } from "../engine/index.ts";
import { applyThreads, quality, runPretrain, runTrain, trainTokenizer } from "./run.ts";
import { rollouts } from "./stages.ts";

export interface PipelineOptions {
  cfg: TrainConfig;
  outDir: string;
  worldSeed: number;
  entities: number;
  vocabSize: number;
  /** test questions per type in the final table (default every one: the first n of a type come from a few
   * entities, each asked about several times, so a cut is a noisy sample) */
  testN?: number;
  refrag: boolean;
  resume?: boolean;
  wandb?: string;
  quiet?: boolean;
}

export interface PipelineResult {
  rag: QualityTable;
  refrag: QualityTable | null;
  /** mean reward (greedy, test questions) after REFRAG SFT and after RL */
  reward: { sft: number; rl: number } | null;
  seconds: Record<string, number>;
  tokensPerSecond: Record<string, number>;
  report: string;
}

/** The budget a training rate implies: what 30 minutes hold at the RAG stage's rate, next to what the job trained. */
export function budgetLine(cfg: TrainConfig, tokensPerSecond: number): string {
  const rows = cfg.deviceBatch * cfg.gradAccum * cfg.seqLen;
  const trained = (cfg.pretrainSteps + cfg.steps + cfg.refragSteps) * rows;
  const m = (n: number) => `${(n / 1e6).toFixed(1)}M`;
  return `Budget: at ${Math.round(tokensPerSecond)} tokens/s, 30 minutes hold ${m(tokensPerSecond * 1800)} training tokens; this job trained ${m(trained)} (pretraining + RAG + REFRAG SFT steps x ${rows} tokens, RL rollouts aside).`;
}

function pickTest(test: QuestionRow[], n = Infinity): QuestionRow[] {
  const by = (t: string) => test.filter((q) => q.type === t).slice(0, n);
  return [...by("single"), ...by("bridge"), ...by("unanswerable")];
}

export async function runPipeline(o: PipelineOptions): Promise<PipelineResult> {
  const { cfg } = o;
  const T0 = performance.now();
  const seconds: Record<string, number> = {};
  let t = performance.now();
  const lap = (name: string) => {
    seconds[name] = Number(((performance.now() - t) / 1000).toFixed(1));
    t = performance.now();
    log.info(`pipeline: ${name} done in ${seconds[name]}s (total ${((performance.now() - T0) / 60000).toFixed(1)} min)`);
  };
  mkdirSync(o.outDir, { recursive: true });
  applyThreads(cfg);
  const dataDir = join(o.outDir, "data");
  prepare({ mode: "synthetic", out: dataDir, seed: o.worldSeed, entities: o.entities });
  const ds = loadDataset(dataDir);
  lap("prepare");

  await loadPlugins();
  const kbPath = join(o.outDir, "kb.db");
  const docs = readDocuments(join(dataDir, "documents.jsonl"));
  const { kb } = await Kb.build(kbPath, docs, { retrievers: [cfg.retriever] });
  lap("kb build");

  const trainTexts = trainingDocuments(docs).map(docText);
  const tokPath = join(o.outDir, "tokenizer.json");
  trainTokenizer(trainTexts, o.vocabSize, tokPath);
  lap("tokenizer");

  const tokS: Record<string, number> = {};
  let source = "scratch";
  if (cfg.pretrainSteps > 0) {
    const pre = await runPretrain({ cfg, outDir: join(o.outDir, "pretrain"), texts: trainTexts.slice(20), valTexts: trainTexts.slice(0, 20), tokenizer: tokPath, steps: cfg.pretrainSteps, resume: o.resume, wandb: o.wandb, quiet: o.quiet });
    tokS.pretrain = Math.round(Number(pre.result.last?.tok_s ?? 0));
    pre.model.free();
    source = join(o.outDir, "pretrain");
    lap("pretrain");
  }

  const rag = await runTrain({ cfg, outDir: join(o.outDir, "rag"), ds, kb, tokenizer: tokPath, source, resume: o.resume, wandb: o.wandb, quiet: o.quiet });
  tokS.rag = Math.round(Number(rag.results.sft?.last?.tok_s ?? 0));
  lap("rag sft");
  const testQs = pickTest(ds.test, o.testN);
  const ragTable = await quality(rag.model, rag.tokenizer, testQs, rag.retrieve, cfg, ["closed", "rag"], join(o.outDir, "quality-rag.json"));
  rag.model.free();
  lap("rag eval");

  let refragTable: QualityTable | null = null;
  let rewardCmp: { sft: number; rl: number } | null = null;
  if (o.refrag) {
    const rr = await runTrain({ cfg, outDir: join(o.outDir, "refrag"), ds, kb, tokenizer: tokPath, source: join(o.outDir, "rag"), refrag: true, resume: o.resume, wandb: o.wandb, quiet: o.quiet });
    tokS.refrag = Math.round(Number(rr.results.sft?.last?.tok_s ?? 0));
    lap("refrag (sft + rl)");
    refragTable = await quality(rr.model, rr.tokenizer, testQs, rr.retrieve, cfg, ["closed", "rag", "refrag"], join(o.outDir, "quality-refrag.json"));
    if (cfg.useRewards && cfg.rlSteps > 0) {
      const greedy = { ...cfg, groupSize: 1 };
      const mean = async (m: typeof rr.model) => {
        const rs = await rollouts(m, rr.tokenizer, testQs, rr.retrieve, greedy, new Sampler(0), 0);
        return Number((rs.reduce((a, r) => a + r.parts.total, 0) / rs.length).toFixed(4));
      };
      const sft = loadCheckpoint(join(o.outDir, "refrag", "sft", "checkpoints", "final"), { optimizer: false }).model;
      rewardCmp = { sft: await mean(sft), rl: await mean(rr.model) };
      sft.free();
    }
    rr.model.free();
    lap("refrag eval");
  }
  kb.close();
  const total = (performance.now() - T0) / 1000;
  const mc = { vocab: o.vocabSize, pattern: cfg.blockPattern, d: cfg.nEmbd };
  const f = flopsPerToken({ vocab_size: o.vocabSize, n_layer: cfg.blockPattern.length, n_embd: cfg.nEmbd, n_head: cfg.nHead, n_kv_head: cfg.nKvHead, block_pattern: cfg.blockPattern, sequence_len: cfg.seqLen, mlp_hidden: cfg.mlpHidden || 4 * cfg.nEmbd, mamba_d_state: cfg.mambaDState, mamba_d_conv: cfg.mambaDConv, mamba_expand: cfg.mambaExpand, mamba_dt_rank: "auto", mamba_use_mlp: cfg.mambaUseMlp, rope_base: cfg.ropeBase, logit_softcap: cfg.logitSoftcap, norm_eps: 1e-6 }, cfg.seqLen);
  const report = [
    `# nanorag main job: world seed ${o.worldSeed}, ${o.entities} entities, pattern ${cfg.blockPattern}, d_model ${cfg.nEmbd}, vocab ${o.vocabSize}`,
    "",
    `Test questions are about entities never seen in training. Total time ${(total / 60).toFixed(1)} min.`,
    "",
    "## After RAG SFT",
    formatQuality(ragTable),
    ...(refragTable ? ["", "## After REFRAG (multi-hop SFT" + (cfg.useRewards ? " + RL" : "") + ")", formatQuality(refragTable)] : []),
    ...(rewardCmp ? ["", `Mean reward on the test questions (greedy): after REFRAG SFT ${rewardCmp.sft}, after RL ${rewardCmp.rl}`] : []),
    "",
    `Stage seconds: ${JSON.stringify(seconds)}`,
    `Training tokens/s (last step): ${JSON.stringify(tokS)}; ${(f.train / 1e6).toFixed(2)} MFLOP per trained token (${JSON.stringify(mc)})`,
    budgetLine(cfg, tokS.rag ?? 0),
  ].join("\n");
  writeFileSync(join(o.outDir, "report.md"), `${report}\n`);
  return { rag: ragTable, refrag: refragTable, reward: rewardCmp, seconds: { ...seconds, total: Number(total.toFixed(1)) }, tokensPerSecond: tokS, report };
}
