import { defineCommand } from "citty";
import { existsSync, statSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import { readDocuments } from "../data/schema.ts";
import { buildConfig, configArgs, configOverrides, loadNamed } from "../train/config.ts";
import { docText, readTextCorpus, trainingDocuments } from "../train/data.ts";
import { runPretrain } from "../train/run.ts";
import { Kb } from "../kb/kb.ts";
import { loadPlugins } from "../retrieval/host.ts";
import { intFlag, printJson } from "./common.ts";
import { jobArgs, startTraining } from "./job.ts";

async function openKb(a: { kb: string; plugins?: string }): Promise<Kb> {
  await loadPlugins(a.plugins);
  return Kb.open(a.kb);
}

export default defineCommand({
  meta: { name: "pretrain", description: "Train a base language model on plain text (and a tokenizer first if none is given)" },
  args: {
    corpus: { type: "string", description: "Text: a .txt/.md file or folder (paragraphs), or a documents JSONL", valueHint: "PATH" },
    kb: { type: "string", description: "Or: the documents of a knowledge base", valueHint: "FILE" },
    tokenizer: { type: "string", description: "Tokenizer file (default: train one on the corpus, saved in --out)", valueHint: "FILE" },
    "vocab-size": { type: "string", description: "Vocabulary of the tokenizer trained here (default 2048)", valueHint: "N" },
    "include-test": { type: "boolean", description: "Keep documents whose metadata.split is \"test\" (left out by default so closed-book baselines measure memory, not reading)" },
    config: { type: "string", description: "Named config or a .ts/.json file (default cpu_small)", valueHint: "NAME|FILE" },
    out: { type: "string", description: "Run folder (default runs/pretrain)", valueHint: "DIR" },
    resume: { type: "boolean", description: "Continue the run in --out from its latest checkpoint" },
    wandb: { type: "string", description: "Also log to this Weights & Biases project", valueHint: "PROJECT" },
    plugins: { type: "string", description: "Extra folder of retriever plugins", valueHint: "DIR" },
    json: { type: "boolean", description: "Print the result as JSON on stdout" },
    ...jobArgs,
    ...configArgs(),
  },
  async run({ args, rawArgs }) {
    const job = await startTraining(["pretrain", ...rawArgs], args, buildConfig(await loadNamed(args.config), configOverrides(args as Record<string, unknown>)));
    if ("exitCode" in job) {
      process.exitCode = job.exitCode;
      return;
    }
    const { cfg, group } = job;
    let texts: string[] = [];
    if (args.corpus) {
      if (!existsSync(args.corpus)) throw new UserError(`--corpus ${args.corpus} does not exist`);
      const files = statSync(args.corpus).isDirectory() ? readdirSync(args.corpus).filter((f) => /\.(txt|md|jsonl)$/.test(f)).sort().map((f) => join(args.corpus!, f)) : [args.corpus];
      for (const f of files) {
        if (f.endsWith(".jsonl")) {
          try {
            const docs = readDocuments(f);
            texts.push(...(args["include-test"] ? docs : trainingDocuments(docs)).map(docText));
            continue;
          } catch {
            /* not a documents file: plain JSONL text rows */
          }
        }
        texts.push(...readTextCorpus(f));
      }
    } else if (args.kb) {
      const kb = await openKb({ kb: args.kb, plugins: args.plugins });
      try {
        const rows = kb.db.query("SELECT title, content, metadata FROM documents ORDER BY id").all() as { title: string; content: string; metadata: string }[];
        for (const r of rows) {
          const m = JSON.parse(r.metadata || "{}") as { split?: string };
          if (!args["include-test"] && m.split === "test") continue;
          texts.push(r.title ? `${r.title}\n${r.content}` : r.content);
        }
      } finally {
        kb.close();
      }
    } else throw new UserError("give --corpus PATH or --kb FILE");
    texts = texts.filter((t) => t.trim());
    if (texts.length < 2) throw new UserError("the corpus has fewer than 2 texts");
    const nVal = Math.min(50, Math.max(1, Math.floor(texts.length * 0.02)));
    const out = args.out ?? "runs/pretrain";
    const r = await runPretrain({ cfg, outDir: out, texts: texts.slice(nVal), valTexts: texts.slice(0, nVal), tokenizer: args.tokenizer, vocabSize: intFlag("vocab-size", args["vocab-size"], 2048, 300), resume: Boolean(args.resume), wandb: args.wandb, group }).finally(() => group?.close());
    if (r.result.interrupted) {
      process.exitCode = 130;
      return;
    }
    if (group && !group.lead) return; // rank 0 reports for the job
    log.success(`${out}: pretrained ${r.result.step} steps, last loss ${r.result.losses.at(-1)?.toFixed(4) ?? "-"}; tokenizer ${r.tokenizerPath}`);
    if (args.json) printJson({ out, tokenizer: r.tokenizerPath, steps: r.result.step, last: r.result.last });
  },
});
