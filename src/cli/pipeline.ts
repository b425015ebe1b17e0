import { defineCommand } from "citty";
import { buildConfig, configArgs, configOverrides, loadNamed } from "../train/config.ts";
import { runPipeline } from "../train/pipeline.ts";
import { selectDevice, type DeviceFlag } from "../engine/index.ts";
import { intFlag, printJson } from "./common.ts";
import { deviceArgs } from "./common.ts";

export default defineCommand({
  meta: {
    name: "pipeline",
    description: "The main job: synthetic world -> KB -> tokenizer -> pretrain -> RAG SFT -> REFRAG -> quality table (with and without retrieval) on held-out test entities",
  },
  args: {
    out: { type: "string", description: "Run folder (default runs/main)", valueHint: "DIR" },
    "world-seed": { type: "string", description: "Seed of the synthetic world (default 0)", valueHint: "S" },
    entities: { type: "string", description: "Entities in the world (default 1000)", valueHint: "N" },
    "vocab-size": { type: "string", description: "Tokenizer vocabulary, trained on the KB text (default 1024)", valueHint: "N" },
    "test-n": { type: "string", description: "Test questions per type in the table (default: all)", valueHint: "N" },
    "skip-refrag": { type: "boolean", description: "Stop after RAG SFT" },
    config: { type: "string", description: "Named config or a .ts/.json file (default cpu_small)", valueHint: "NAME|FILE" },
    resume: { type: "boolean", description: "Continue each stage from its latest checkpoint" },
    wandb: { type: "string", description: "Also log to this Weights & Biases project", valueHint: "PROJECT" },
    json: { type: "boolean", description: "Print the tables as JSON on stdout" },
    ...deviceArgs,
    ...configArgs(),
  },
  async run({ args }) {
    const cfg = buildConfig(await loadNamed(args.config), configOverrides(args as Record<string, unknown>));
    selectDevice((args.device ?? "auto") as DeviceFlag);
    const r = await runPipeline({
      cfg,
      outDir: args.out ?? "runs/main",
      worldSeed: intFlag("world-seed", args["world-seed"], 0, 0),
      entities: intFlag("entities", args.entities, 1000, 20),
      vocabSize: intFlag("vocab-size", args["vocab-size"], 1024, 300),
      testN: args["test-n"] === undefined ? undefined : intFlag("test-n", args["test-n"], 1),
      refrag: !args["skip-refrag"],
      resume: Boolean(args.resume),
      wandb: args.wandb,
    });
    if (args.json) printJson(r);
    else process.stdout.write(`${r.report}\n`);
  },
});
