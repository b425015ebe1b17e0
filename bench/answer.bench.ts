/**
 * Answer latency benchmark (issue 7): time to first token and decode tokens/s on the CPU for an
 * all-attention (T), an all-Mamba (M) and a hybrid model of about equal parameter count, as the
 * retrieved documents grow (1, 5, 10, 20 documents of ~125 tokens). Untrained (seeded random)
 * weights: speed does not depend on what the weights say. The prompt is rendered by the chat
 * template from real text (a synthetic world's documents, a BPE tokenizer trained on them).
 *
 *   bun bench/answer.bench.ts [--threads 2] [--reps 5] [--json]
 *
 * TTFT = rendering + prefill + picking the first token; decode = 64 further tokens, one forward each
 * (the answering path's loop without retrieval). The three models take turns within each repetition;
 * medians over --reps; wall and CPU time both, since
 * on a shared machine CPU time is what load does not distort. Markdown on stdout, progress on stderr.
 */
import { generateWorld } from "../src/data/synthetic.ts";
import { engineInfo, Model, setThreads } from "../src/engine/index.ts";
import { type RagDoc, render } from "../src/rag/template.ts";
import { trainBpe } from "../src/tokenizer/train.ts";
import { argv, cpuMs, load, median, opt, say } from "./measure.ts";

const THREADS = Number(opt("--threads", "2"));
const REPS = Number(opt("--reps", "5"));
const JSONOUT = argv.includes("--json");
const DOCS = [1, 5, 10, 20];
const DOC_TOKENS = 125;
const DECODE = 64;
setThreads(THREADS);

// Equal size: a T layer (attention + MLP) holds ~1.8x the weights of an M layer (Mamba-1, expand 2).
const D = 256, VOCAB = 4096;
const MODELS = [
  { name: "T", pattern: "TTTT" },
  { name: "M", pattern: "MMMMMMM" },
  { name: "hybrid", pattern: "TMMTMM" },
];

say("tokenizer and documents ...");
const world = generateWorld({ entities: 400, seed: 1 });
const texts = world.documents.map((d) => `${d.title}\n${d.content}`);
const tok = trainBpe(texts, { vocabSize: VOCAB }).tokenizer;
// Documents of DOC_TOKENS tokens: world documents joined and cut.
const stream = tok.encode(texts.join("\n\n"));
const docs: RagDoc[] = Array.from({ length: Math.max(...DOCS) }, (_, i) => ({
  id: `d${i}`,
  title: world.documents[i]!.title,
  text: tok.decode(stream.slice(i * DOC_TOKENS, (i + 1) * DOC_TOKENS)),
}));
const question = "Which company did the founder of the oldest company in Hagaha work for before, and when was it founded?";

const argmax = (a: Float32Array) => a.reduce((b, x, i) => (x > a[b]! ? i : b), 0);

interface Cell {
  docs: number;
  promptTokens: number;
  ttftMs: number;
  ttftCpuMs: number;
  decodeTokS: number;
  decodeCpuMsPerTok: number;
}

/** One answer's latency: render + prefill + first token, then DECODE tokens one forward each. */
function measure(state: ReturnType<Model["newState"]>, k: number) {
  state.reset();
  const t0 = performance.now(), c0 = cpuMs();
  const ids = render(tok, { messages: [{ role: "user", content: question }, { role: "docs", docs: docs.slice(0, k) }] }, { open: true }).ids;
  let t = argmax(state.forward(ids, ids.length));
  const ttftMs = performance.now() - t0, ttftCpuMs = cpuMs() - c0;
  const t1 = performance.now(), c1 = cpuMs();
  for (let n = 0; n < DECODE; n++) t = argmax(state.forward([t], 1));
  return { promptTokens: ids.length, ttftMs, ttftCpuMs, decodeTokS: (DECODE * 1000) / (performance.now() - t1), decodeCpuMsPerTok: (cpuMs() - c1) / DECODE };
}

const loaded = MODELS.map((m) => {
  const model = Model.create({ vocab_size: tok.vocabSize, n_layer: m.pattern.length, n_embd: D, n_head: 4, n_kv_head: 4, block_pattern: m.pattern, sequence_len: 4096, mlp_hidden: 4 * D }, 1);
  return { ...m, model, state: model.newState(1, 4096), cells: [] as Cell[] };
});
process.stdout.write(JSONOUT ? "" : `Answer latency (${engineInfo()}): ${THREADS} threads, d_model ${D}, vocab ${tok.vocabSize} (asked ${VOCAB}), untrained weights; load average ${load()} at start\n\n`);
for (const k of DOCS) {
  say(`${k} documents ...`);
  // The models take turns within each repetition, so a change in the machine's load hits all three.
  const runs = loaded.map(() => [] as ReturnType<typeof measure>[]);
  for (let r = 0; r < REPS + 1; r++) {
    loaded.forEach((m, i) => {
      const x = measure(m.state, k);
      if (r > 0) runs[i]!.push(x); // the first round warms up
    });
  }
  loaded.forEach((m, i) => {
    const xs = runs[i]!;
    m.cells.push({ docs: k, promptTokens: xs[0]!.promptTokens, ttftMs: median(xs.map((x) => x.ttftMs)), ttftCpuMs: median(xs.map((x) => x.ttftCpuMs)), decodeTokS: median(xs.map((x) => x.decodeTokS)), decodeCpuMsPerTok: median(xs.map((x) => x.decodeCpuMsPerTok)) });
  });
}
const results = loaded.map((m) => ({ name: m.name, pattern: m.pattern, params: m.model.numParams, cells: m.cells }));
for (const m of loaded) {
  m.state.free();
  m.model.free();
}

/** Documents a model reads within a TTFT budget, interpolated between measured counts (">20" past them). */
function docsWithin(cells: Cell[], budgetMs: number, key: "ttftMs" | "ttftCpuMs"): string {
  if (cells[0]![key] > budgetMs) return "<1";
  for (let i = 1; i < cells.length; i++) {
    const a = cells[i - 1]!, b = cells[i]!;
    if (b[key] >= budgetMs) return (a.docs + ((budgetMs - a[key]) / (b[key] - a[key])) * (b.docs - a.docs)).toFixed(1);
  }
  return `>${cells[cells.length - 1]!.docs}`;
}

if (JSONOUT) process.stdout.write(`${JSON.stringify({ threads: THREADS, load: load(), results }, null, 1)}\n`);
else {
  const T = results[0]!;
  const lines = [
    "| model | pattern | params | docs | prompt tokens | TTFT ms | TTFT CPU ms | decode tok/s | decode CPU ms/tok | TTFT vs T | decode vs T |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    r.cells.forEach((c, i) => {
      const t = T.cells[i]!;
      lines.push(`| ${r.name} | ${r.pattern} | ${(r.params / 1e6).toFixed(2)}M | ${c.docs} | ${c.promptTokens} | ${c.ttftMs.toFixed(1)} | ${c.ttftCpuMs.toFixed(1)} | ${c.decodeTokS.toFixed(0)} | ${c.decodeCpuMsPerTok.toFixed(2)} | ${(c.ttftCpuMs / t.ttftCpuMs).toFixed(2)}x | ${(t.decodeCpuMsPerTok / c.decodeCpuMsPerTok).toFixed(2)}x |`);
    });
  }
  // Decode time per token is not monotone in documents under noise: the most documents still at or under the budget.
  const decodesWithin = (cells: Cell[], budget: number) => cells.filter((c) => c.decodeCpuMsPerTok <= budget).reduce((n, c) => Math.max(n, c.docs), 0) || "<1";
  lines.push("", "Documents a model reads at the T model's speed with 5 and 10 documents (CPU time; TTFT interpolated, decode: the most measured documents at or under T's ms/token):", "", "| model | TTFT of T at 5 | TTFT of T at 10 | decode of T at 5 | decode of T at 10 |", "|---|---|---|---|---|");
  for (const r of results) lines.push(`| ${r.name} | ${docsWithin(r.cells, T.cells[1]!.ttftCpuMs, "ttftCpuMs")} | ${docsWithin(r.cells, T.cells[2]!.ttftCpuMs, "ttftCpuMs")} | ${decodesWithin(r.cells, T.cells[1]!.decodeCpuMsPerTok)} | ${decodesWithin(r.cells, T.cells[2]!.decodeCpuMsPerTok)} |`);
  process.stdout.write(`${lines.join("\n")}\n\nload average ${load()} at the end\n`);
}
