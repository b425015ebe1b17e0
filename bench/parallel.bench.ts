/**
 * Data-parallel CPU training (src/train/parallel/): one process with T threads against N worker
 * processes with T/N threads each, on the same global batch, through the CLI (`nanorag pretrain`).
 *
 *   bun bench/parallel.bench.ts [--steps 40] [--threads 2] [--json]
 *
 * Tokens/s are the loop's (rank 0's metrics.jsonl: tokens over the loop's elapsed time), so start-up
 * and tokenizer training are left out. The all-reduce column is rank 0's time in it per step, waiting
 * for the other rank included. The last column checks that both runs trained the same model.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { generateWorld } from "../src/data/synthetic.ts";

const argv = process.argv.slice(2);
const opt = (k: string, d: string) => (argv.includes(k) ? argv[argv.indexOf(k) + 1]! : d);
const STEPS = Number(opt("--steps", "40"));
const THREADS = Number(opt("--threads", "2"));
const tmp = mkdtempSync(join(tmpdir(), "nanorag-bench-par-"));
const corpus = join(tmp, "docs.jsonl");
writeFileSync(corpus, generateWorld({ entities: 300, seed: 1 }).documents.map((d) => JSON.stringify(d)).join("\n") + "\n");
const main = join(import.meta.dir, "../src/cli/main.ts");
const base = ["pretrain", "--corpus", corpus, "--vocab-size", "1024", "--config", "cpu_small", "--device", "cpu", "--steps", String(STEPS), "--eval-every", "100000", "--save-every", "100000"];

interface Run {
  name: string;
  procs: number;
  threadsEach: number;
  batch: number;
}
const runs: Run[] = [
  { name: "one process", procs: 1, threadsEach: THREADS, batch: 8 },
  { name: `${THREADS} workers`, procs: THREADS, threadsEach: 1, batch: 8 / THREADS },
  { name: "one process, one worker's share", procs: 1, threadsEach: 1, batch: 8 / THREADS },
];
const rows: Record<string, unknown>[] = [];
let tokenizer = "";
for (const r of runs) {
  const out = join(tmp, r.name.replaceAll(/\W+/g, "-"));
  const args = [...base, "--out", out, "--device-batch", String(r.batch), "--threads", String(r.procs * r.threadsEach), ...(tokenizer ? ["--tokenizer", tokenizer] : []), ...(r.procs > 1 ? ["--nproc-per-node", String(r.procs)] : [])];
  process.stderr.write(`${r.name}: ${args.slice(base.length).join(" ")}\n`);
  const p = Bun.spawnSync([process.execPath, main, ...args], { stdout: "ignore", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${r.name} failed: ${p.stderr.toString()}`);
  tokenizer ||= join(out, "tokenizer.json");
  const m = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const tokens = m.reduce((a, x) => a + x.tokens, 0);
  // rank 0's time in the all-reduce per step (median), waiting for the other rank included
  const sync = m.filter((x) => typeof x.sync_ms === "number").map((x) => x.sync_ms as number).sort((a, b) => a - b);
  rows.push({ run: r.name, processes: r.procs, threads: r.threadsEach, rows: r.batch * r.procs, seconds: m.at(-1).time, tok_s: Math.round(tokens / m.at(-1).time), sync_ms: sync.length ? sync[sync.length >> 1] : null, final_loss: m.at(-1).loss });
}
const ref = rows[0]!.tok_s as number;
const load = loadavg()[0]!.toFixed(1);
if (argv.includes("--json")) process.stdout.write(`${JSON.stringify({ steps: STEPS, load, rows }, null, 1)}\n`);
else {
  process.stdout.write(`cpu_small (TMT, d_model 128, rows of 256), ${STEPS} pretraining steps; load average ${load}\n\n`);
  process.stdout.write("| run | processes x threads | rows per step | loop s | tokens/s | vs one process | all-reduce ms/step (median) | final loss |\n|---|---|---|---|---|---|---|---|\n");
  for (const r of rows) process.stdout.write(`| ${r.run} | ${r.processes} x ${r.threads} | ${r.rows} | ${r.seconds} | ${r.tok_s} | ${((r.tok_s as number) / ref).toFixed(2)} | ${r.sync_ms ?? "-"} | ${r.final_loss} |\n`);
}
rmSync(tmp, { recursive: true, force: true });
