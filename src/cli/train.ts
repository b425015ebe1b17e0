import { defineCommand } from "citty";
import { join } from "node:path";
import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import { buildConfig, configArgs, configOverrides, loadNamed } from "../train/config.ts";
import { loadDataset } from "../train/data.ts";
import { materializeTask, TASK_NAMES } from "../train/task.ts";
import { formatQuality, quality, runTrain } from "../train/run.ts";
import { Kb } from "../kb/kb.ts";
import { loadPlugins } from "../retrieval/host.ts";
import { intFlag, printJson } from "./common.ts";
import { jobArgs, startTraining } from "./job.ts";

async function openKb(a: { kb: string; plugins?: string }): Promise<Kb> {
  await loadPlugins(a.plugins);
  return Kb.open(a.kb);
}

export default defineCommand({
  meta: {
    name: "train",
    description: "Fine-tune a model to answer from retrieved documents (RAG SFT), or with --refrag to write follow-up queries (multi-hop SFT, then RL with --use-rewards)",
  },
  args: {
    kb: { type: "string", description: "Knowledge-base file the retriever searches", required: true, valueHint: "FILE" },
    data: { type: "string", description: "Dataset folder from `nanorag prepare` (documents.jsonl, train/val[/test].jsonl); or use --task", valueHint: "DIR" },
    task: { type: "string", description: `A dataset this command prepares into <out>/data instead of --data: ${TASK_NAMES.join(", ")} (synthetic:entities=N,seed=S; hotpotqa:input=FILE); builds --kb from it when the file does not exist`, valueHint: "NAME[:k=v,...]" },
    tokenizer: { type: "string", description: "Tokenizer file (default: the one the --source checkpoint names)", valueHint: "FILE" },
    source: { type: "string", description: "scratch, or a checkpoint folder (e.g. a pretrain run)", default: "scratch", valueHint: "scratch|DIR" },
    config: { type: "string", description: "Named config (cpu_tiny, cpu_small, rag_hybrid_d20, rag_mamba_d20, refrag_hybrid_d20) or a .ts/.json file", valueHint: "NAME|FILE" },
    out: { type: "string", description: "Run folder: checkpoints/, metrics.jsonl, metrics.html (default runs/train)", valueHint: "DIR" },
    refrag: { type: "boolean", description: "Recursive retrieval: multi-hop SFT, then RL when --use-rewards" },
    resume: { type: "boolean", description: "Continue the run in --out from its latest checkpoint" },
    wandb: { type: "string", description: "Also log to this Weights & Biases project (needs WANDB_API_KEY)", valueHint: "PROJECT" },
    "eval-split": { type: "enum", options: ["val", "test", "none"], description: "Questions for the final quality table (default val)" },
    "eval-n": { type: "string", description: "Questions in the final quality table (default 100)", valueHint: "N" },
    plugins: { type: "string", description: "Extra folder of retriever plugins", valueHint: "DIR" },
    json: { type: "boolean", description: "Print the result as JSON on stdout" },
    ...jobArgs,
    ...configArgs(),
  },
  async run({ args, rawArgs }) {
    if (Boolean(args.data) === Boolean(args.task)) throw new UserError("train needs exactly one of --data DIR (from `nanorag prepare`) and --task NAME");
    const named = await loadNamed(args.config);
    const config = buildConfig(named, configOverrides(args as Record<string, unknown>));
    const outDir = args.out ?? "runs/train";
    // Prepared once, before any worker starts: the workers of a multi-process job find it in place.
    const dataDir = args.task ? await materializeTask(args.task, outDir, args.kb, config.retriever) : args.data!;
    const job = await startTraining(["train", ...rawArgs], args, config);
    if ("exitCode" in job) {
      process.exitCode = job.exitCode;
      return;
    }
    const { cfg, group } = job;
    const ds = loadDataset(dataDir);
    const kb = await openKb({ kb: args.kb, plugins: args.plugins });
    try {
      const r = await runTrain({ cfg, outDir, ds, kb, tokenizer: args.tokenizer, source: args.source ?? "scratch", refrag: Boolean(args.refrag), resume: Boolean(args.resume), wandb: args.wandb, group });
      if (r.interrupted) {
        process.exitCode = 130;
        return;
      }
      if (group && !group.lead) return; // rank 0 reports for the job
      const split = (args["eval-split"] ?? "val") as "val" | "test" | "none";
      let table = null;
      if (split !== "none") {
        const n = intFlag("eval-n", args["eval-n"], 100);
        const qs = ds[split].slice(0, n);
        if (qs.length === 0) throw new UserError(`--eval-split ${split}: the dataset has no ${split} questions`);
        table = await quality(r.model, r.tokenizer, qs, r.retrieve, cfg, args.refrag ? ["closed", "rag", "refrag"] : ["closed", "rag"], join(outDir, `quality-${split}.json`));
        if (!args.json) process.stdout.write(`${formatQuality(table)}\n`);
      }
      const losses = Object.fromEntries(Object.entries(r.results).map(([k, v]) => [k, v.last]));
      log.success(`${outDir}: done (${Object.keys(r.results).join(", ") || "nothing to do"})`);
      if (args.json) printJson({ out: outDir, config: cfg, last: losses, quality: table });
    } finally {
      group?.close();
      kb.close();
    }
  },
});
