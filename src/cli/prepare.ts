import { defineCommand } from "citty";
import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import { MODES, type Mode, prepare } from "../data/prepare.ts";

function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UserError(`--${name} must be an integer >= ${min}, got "${v}"`);
  return n;
}

export default defineCommand({
  meta: { name: "prepare", description: "Write a dataset folder: documents for `kb build`, questions, and a manifest" },
  args: {
    mode: { type: "enum", options: [...MODES], description: "example | synthetic | build | hotpotqa", required: true },
    out: { type: "string", description: "Output folder (default data/<mode>)", valueHint: "DIR" },
    entities: { type: "string", description: "synthetic: number of entities (default 1000)", valueHint: "N" },
    seed: { type: "string", description: "Seed for generation and splits (default 0)", valueHint: "S" },
    documents: { type: "string", description: "build: your documents JSONL (id, title, content, source, metadata)", valueHint: "FILE" },
    questions: { type: "string", description: "build: your QA JSONL (question, answer, relevant_docs)", valueHint: "FILE" },
    input: { type: "string", description: "hotpotqa: a HotpotQA JSON or JSONL file", valueHint: "FILE" },
    "val-fraction": { type: "string", description: "build/hotpotqa: share of questions held out for validation (default 0.1)" },
    json: { type: "boolean", description: "Print the manifest as JSON on stdout" },
  },
  run({ args }) {
    const mode = args.mode as Mode;
    const out = args.out ?? `data/${mode}`;
    const vf = args["val-fraction"];
    const t0 = performance.now();
    const m = prepare({
      mode,
      out,
      seed: int("seed", args.seed, 0),
      entities: int("entities", args.entities, 4),
      documents: args.documents,
      questions: args.questions,
      input: args.input,
      valFraction: vf === undefined ? undefined : Number(vf),
    });
    const files = Object.entries(m.files).map(([f, v]) => `${f} (${v.rows})`).join(", ");
    log.success(`${out}: ${files} in ${((performance.now() - t0) / 1000).toFixed(2)}s`);
    if (args.json) process.stdout.write(`${JSON.stringify(m, null, 2)}\n`);
  },
});
