/**
 * The TypeScript side of the GPU check (issue #8), for a machine with a GPU, Bun and a built
 * libnanorag_cuda.so (native/gpu-check.sh covers the kernels and needs no Bun):
 *
 *   bun src/scripts/gpu-train-check.ts [--steps 20] [--json]
 *
 * Through the CLI, on the same small pretraining job: `--device cuda` against `--device cpu` (loss per
 * step; bf16 GEMMs, so a loose tolerance), a `--resume` on CUDA (checkpoint load, then upload to the
 * GPU), and with two or more GPUs `--nproc-per-node 2` (NCCL all-reduce) against one GPU with the
 * doubled batch. One line per check on stdout; exit 1 when a check fails.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateWorld } from "../data/synthetic.ts";

const argv = process.argv.slice(2);
const STEPS = Number(argv.includes("--steps") ? argv[argv.indexOf("--steps") + 1] : 20);
const tmp = mkdtempSync(join(tmpdir(), "nanorag-gpu-train-"));
const corpus = join(tmp, "docs.jsonl");
writeFileSync(corpus, generateWorld({ entities: 200, seed: 1 }).documents.map((d) => JSON.stringify(d)).join("\n") + "\n");
const main = join(import.meta.dir, "../cli/main.ts");
const results: { check: string; ok: boolean; detail: string }[] = [];
let tokenizer = "";

/**
 * Runs `nanorag pretrain` (cpu_small, the given flags) into tmp/name; returns its losses, or the error.
 * No warmdown, and warmup (20 steps) at least as long as the run: the learning rate of a step then does
 * not depend on the run's length, so a run stopped halfway and resumed repeats the whole run.
 */
function pretrain(name: string, flags: string[], steps = STEPS): number[] | string {
  const out = join(tmp, name);
  const args = ["pretrain", "--corpus", corpus, "--vocab-size", "1024", "--config", "cpu_small", "--steps", String(steps), "--warmup-steps", String(Math.max(20, STEPS)), "--warmdown-frac", "0", "--eval-every", "100000", "--save-every", String(Math.ceil(steps / 2)), "--out", out, ...(tokenizer ? ["--tokenizer", tokenizer] : []), ...flags];
  const p = Bun.spawnSync([process.execPath, main, ...args], { stdout: "ignore", stderr: "pipe" });
  if (p.exitCode !== 0) return `exit ${p.exitCode}: ${p.stderr.toString().trim().split("\n").slice(-2).join(" | ")}`;
  tokenizer ||= join(out, "tokenizer.json");
  return readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).loss as number);
}

/** Largest relative difference of two loss curves. */
function worst(a: number[], b: number[]): number {
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]!) / Math.abs(x)));
}

function compare(check: string, a: number[] | string, b: number[] | string, tol: number): void {
  if (typeof a === "string" || typeof b === "string") results.push({ check, ok: false, detail: [...new Set([a, b].filter((x) => typeof x === "string"))].join("; ") });
  else results.push({ check, ok: a.length === b.length && worst(a, b) <= tol, detail: `${a.length} steps, worst relative loss difference ${worst(a, b).toExponential(2)} (tolerance ${tol})` });
}

const cpu = pretrain("cpu", ["--device", "cpu"]);
const cuda = pretrain("cuda", ["--device", "cuda"]);
compare("--device cuda vs --device cpu (bf16 GEMMs)", cpu, cuda, 5e-2);

// resume on CUDA: the second half of a run continued from its checkpoint matches the uninterrupted run
const half = pretrain("resumed", ["--device", "cuda"], Math.ceil(STEPS / 2));
const resumed = typeof half === "string" ? half : pretrain("resumed", ["--device", "cuda", "--resume"]);
compare("--device cuda, --resume from a checkpoint halfway", cuda, resumed, 1e-3);

const smi = Bun.which("nvidia-smi");
const gpus = smi ? Bun.spawnSync([smi, "--query-gpu=name", "--format=csv,noheader"]).stdout.toString().trim().split("\n").filter(Boolean).length : 0;
if (gpus >= 2) {
  const one = pretrain("one-gpu", ["--device", "cuda", "--device-batch", "8"]);
  const two = pretrain("two-gpus", ["--device", "cuda", "--device-batch", "4", "--nproc-per-node", "2"]);
  compare("--nproc-per-node 2 (NCCL) vs one GPU with the doubled batch", one, two, 1e-2);
} else results.push({ check: "--nproc-per-node 2 (NCCL)", ok: true, detail: `skipped: ${gpus} GPU(s)` });

if (argv.includes("--json")) process.stdout.write(`${JSON.stringify(results, null, 1)}\n`);
else for (const r of results) process.stdout.write(`${r.ok ? "ok  " : "FAIL"} ${r.check}: ${r.detail}\n`);
rmSync(tmp, { recursive: true, force: true });
process.exit(results.every((r) => r.ok) ? 0 : 1);
