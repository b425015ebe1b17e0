/**
 * Where a decoded token's time goes in the JS answering loop (issue 7 latency, issue 6 rollouts), for
 * the answer benchmark's hybrid model (TMMTMM, d_model 256, vocabulary 4096, untrained weights) after a
 * five-document prompt. Per token, CPU and wall: the engine's forward through the FFI (logits copied
 * into a new array), greedy picking in JS and through nr_sample, TextStream.push over a 64-token answer,
 * one event-loop yield (setImmediate, the loop's choice, and setTimeout(0) for comparison), and
 * generate() whole, interactive (yields, streams text) and not. The C-only figure for the same model
 * is native/tests/bench_decode_ab.c. Medians over --reps.
 *
 *   bun bench/decode.bench.ts [--threads 1] [--reps 5] [--json]
 */
import { generateWorld } from "../src/data/synthetic.ts";
import { engineInfo, Model, Sampler, setThreads } from "../src/engine/index.ts";
import { type RagDoc, render } from "../src/rag/template.ts";
import { TextStream } from "../src/tokenizer/stream.ts";
import { trainBpe } from "../src/tokenizer/train.ts";
import { generate } from "../src/train/generate.ts";
import { argv, cpuMs, load, median, opt, say } from "./measure.ts";

const THREADS = Number(opt("--threads", "1"));
const REPS = Number(opt("--reps", "5"));
const DECODE = 64;
setThreads(THREADS);

say("tokenizer and documents ...");
const world = generateWorld({ entities: 400, seed: 1 });
const texts = world.documents.map((d) => `${d.title}\n${d.content}`);
const tok = trainBpe(texts, { vocabSize: 4096 }).tokenizer;
const docs: RagDoc[] = world.documents.slice(0, 5).map((d, i) => ({ id: `d${i}`, title: d.title, text: d.content }));
const conv = { messages: [{ role: "user" as const, content: "Who founded the oldest company in Hagaha?" }, { role: "docs" as const, docs }] };
const prompt = render(tok, conv, { open: true }).ids;
const V = tok.vocabSize;
const model = Model.create({ vocab_size: V, n_embd: 256, n_head: 4, n_kv_head: 4, block_pattern: "TMMTMM", sequence_len: 4096, mlp_hidden: 1024 }, 1);
const state = model.newState(1, 4096);
const sampler = new Sampler(1);
const sampleText = tok.encode(texts.slice(0, 20).join(" ")).slice(0, DECODE);

/** wall and CPU ms per item of `n` calls of `body` */
async function per(n: number, body: (i: number) => unknown): Promise<{ wall: number; cpu: number }> {
  const t0 = performance.now(), c0 = cpuMs();
  for (let i = 0; i < n; i++) await body(i);
  return { wall: (performance.now() - t0) / n, cpu: (cpuMs() - c0) / n };
}

function jsArgmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

const rows: Record<string, { wall: number[]; cpu: number[] }> = {};
const add = (name: string, x: { wall: number; cpu: number }) => {
  rows[name] ??= { wall: [], cpu: [] };
  rows[name].wall.push(x.wall);
  rows[name].cpu.push(x.cpu);
};
say(`prompt ${prompt.length} tokens; ${REPS} repetitions ...`);
for (let r = 0; r <= REPS; r++) {
  const keep = r > 0 ? add : () => {}; // the first round warms up
  state.reset();
  let logits = state.forward(prompt, prompt.length);
  keep("engine forward (FFI, logits copied)", await per(DECODE, (i) => (logits = state.forward([sampleText[i]!], 1))));
  keep("greedy pick in JS (argmax over V)", await per(1000, () => jsArgmax(logits)));
  keep("greedy pick by nr_sample", await per(1000, () => sampler.sample(logits, 1, V, { temperature: 0 })));
  const ts = new TextStream((x) => tok.decode(x));
  keep("TextStream.push (64-token answer)", await per(DECODE, (i) => ts.push(sampleText[i]!)));
  keep("yield: setImmediate", await per(1000, () => new Promise<void>((res) => setImmediate(res))));
  keep("yield: setTimeout(0)", await per(200, () => new Promise<void>((res) => setTimeout(res, 0))));
  for (const interactive of [false, true]) {
    const c0 = cpuMs();
    const g = await generate(model, tok, conv, { maxNewTokens: DECODE, temperature: 0, maxHops: 0, topKPerHop: 0, maxLen: 4000, state, onText: interactive ? () => {} : undefined });
    // CPU of the whole call less the prefill's share (its wall time, as the prefill runs on one core's worth)
    keep(`generate() ${interactive ? "interactive (yields, streams text)" : "batch"}`, { wall: g.timings.decodeMs / g.timings.tokens, cpu: (cpuMs() - c0 - g.timings.prefillMs) / g.timings.tokens });
  }
}
state.free();
model.free();
const out = Object.entries(rows).map(([name, x]) => ({ name, wallMs: median(x.wall), cpuMs: median(x.cpu) }));
if (argv.includes("--json")) process.stdout.write(`${JSON.stringify({ threads: THREADS, engine: engineInfo(), promptTokens: prompt.length, load: load(), rows: out }, null, 1)}\n`);
else {
  const lines = [`Decode per token in JS (${engineInfo()}), TMMTMM d_model 256, vocab ${V}, prompt ${prompt.length} tokens, load ${load()}`, "", "| part | wall ms/token | CPU ms/token |", "|---|---|---|"];
  for (const x of out) lines.push(`| ${x.name} | ${x.wallMs.toFixed(3)} | ${x.cpuMs.toFixed(3)} |`);
  process.stdout.write(`${lines.join("\n")}\n`);
}
