/**
 * Answer-quality benchmark (issue 6): the main job's pipeline for transformer, Mamba and hybrid block
 * patterns (and several world seeds), each on a fresh synthetic world; one row per run with
 * single-hop EM with retrieval and closed-book, two-hop EM with REFRAG vs single-shot RAG, abstention
 * and false abstention, hops, citation accuracy, mean reward after REFRAG SFT and after RL, time and
 * training tokens/s. On the 2-core CPU the default sizes take about 30 minutes per run; `--device cuda`
 * runs the same on a GPU (the CUDA library is looked up as `nanorag train --device` does).
 *
 * Usage: bun bench/quality.bench.ts [--patterns TMT,TTT,MMM] [--seeds 0] [--entities 1000] [--device auto|cpu|cuda]
 *        [--config cpu_small] [--out runs/bench-quality] [any config flag, e.g. --steps 1500 --threads 2]
 */
import { join } from "node:path";
import { type DeviceFlag, selectDevice } from "../src/engine/device.ts";
import { buildConfig, KEYS, kebab, loadNamed, parseValue, type TrainConfig } from "../src/train/config.ts";
import { runPipeline } from "../src/train/pipeline.ts";

const argv = process.argv.slice(2);
const opt = (name: string, d: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : d;
};
const overrides: Partial<TrainConfig> = {};
for (let i = 0; i < argv.length; i++) {
  const k = KEYS.find((key) => `--${kebab(key)}` === argv[i]);
  if (k) (overrides as Record<string, unknown>)[k] = parseValue(k, argv[++i]!);
}
const patterns = opt("patterns", "TMT,TTT,MMM").split(",");
const seeds = opt("seeds", "0").split(",").map(Number);
const entities = Number(opt("entities", "1000"));
const out = opt("out", "runs/bench-quality");
const named = await loadNamed(opt("config", "cpu_small"));
selectDevice(opt("device", "auto") as DeviceFlag);

const f = (v: number | null | undefined) => (v === null || v === undefined || Number.isNaN(v) ? "-" : v.toFixed(3));
const rows: string[] = [
  "| pattern | seed | 1-hop EM RAG | 1-hop EM closed | 2-hop EM REFRAG | 2-hop EM RAG | abstention | false abst. | citation | hops | reward SFT -> RL | minutes | train tok/s |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
];
for (const pattern of patterns) {
  for (const seed of seeds) {
    const cfg = buildConfig(named, { ...overrides, blockPattern: pattern });
    const r = await runPipeline({ cfg, outDir: join(out, `${pattern}-s${seed}`), worldSeed: seed, entities, vocabSize: 1024, refrag: true, quiet: true });
    const rag = r.rag.modes.rag!, closed = r.rag.modes.closed!;
    const rf = r.refrag?.modes.refrag, rfRag = r.refrag?.modes.rag;
    rows.push(
      `| ${pattern} | ${seed} | ${f(rag.single?.em)} | ${f(closed.single?.em)} | ${f(rf?.bridge?.em)} | ${f(rfRag?.bridge?.em)} | ${f(rf?.unanswerable?.abstention ?? rag.unanswerable?.abstention)} | ${f(rf?.all?.falseAbstention ?? rag.all?.falseAbstention)} | ${f(rf?.all?.citation ?? rag.all?.citation)} | ${f(rf?.all?.hops)} | ${r.reward ? `${r.reward.sft.toFixed(3)} -> ${r.reward.rl.toFixed(3)}` : "-"} | ${(r.seconds.total! / 60).toFixed(1)} | ${JSON.stringify(r.tokensPerSecond)} |`,
    );
    console.error(rows.at(-1));
  }
}
console.log(rows.join("\n"));
