import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { DEFAULTS } from "../src/train/config.ts";
import { budgetLine } from "../src/train/pipeline.ts";
import { BUN, cli, ROOT, tempDir } from "./helpers.ts";

let dir: string;
const tiny = ["--config", "cpu_tiny", "--threads", "1"];

beforeAll(() => {
  dir = tempDir("nanorag-pipeline-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("nanorag pipeline (tiny)", () => {
  test("world -> KB -> tokenizer -> pretrain -> RAG -> REFRAG (+RL) -> quality table", () => {
    const r = cli(["pipeline", "--out", join(dir, "p"), "--entities", "60", "--world-seed", "7", "--vocab-size", "400", ...tiny, "--steps", "4", "--pretrain-steps", "3", "--pretrain-copy", "true", "--refrag-steps", "3", "--rl-steps", "2", "--use-rewards"]);
    expect(r.code).toBe(0);
    for (const mode of ["closed", "rag", "refrag"]) expect(r.stdout).toContain(`| ${mode} | single |`);
    expect(r.stdout).toContain("After REFRAG (multi-hop SFT + RL)");
    // the budget the measured rate implies, next to what was trained: (3 + 4 + 3) steps of cpu_tiny's rows
    expect(r.stdout).toMatch(/Budget: at \d+ tokens\/s, 30 minutes hold [\d.]+M training tokens; this job trained [\d.]+M/);
    const p = join(dir, "p");
    // the table counts every test question of a type (no --test-n cut)
    const singles = readFileSync(join(p, "data/test.jsonl"), "utf8").trim().split("\n").filter((l) => JSON.parse(l).type === "single").length;
    expect(r.stdout).toContain(`| rag | single | ${singles} |`);
    for (const f of ["data/manifest.json", "kb.db", "tokenizer.json", "pretrain/checkpoints/final/config.json", "rag/checkpoints/final/config.json", "refrag/sft/checkpoints/final/config.json", "refrag/rl/checkpoints/final/config.json", "report.md", "quality-rag.json", "quality-refrag.json", "rag/metrics.html"]) {
      expect(existsSync(join(p, f))).toBe(true);
    }
    const rl = readFileSync(join(p, "refrag/rl/metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(rl.length).toBe(2);
    for (const k of ["reward", "r_answer", "r_cite", "r_retrieval", "r_hops"]) expect(typeof rl[0][k]).toBe("number");
  }, 60_000);

  test("the budget line: what 30 minutes hold at the measured rate, next to what the stages trained", () => {
    const cfg = { ...DEFAULTS, deviceBatch: 8, gradAccum: 1, seqLen: 256, pretrainSteps: 2000, steps: 8000, refragSteps: 1000 };
    // 19,000 x 1,800 = 34.2M; (2,000 + 8,000 + 1,000) x 8 x 256 = 22.5M
    expect(budgetLine(cfg, 19000)).toBe("Budget: at 19000 tokens/s, 30 minutes hold 34.2M training tokens; this job trained 22.5M (pretraining + RAG + REFRAG SFT steps x 2048 tokens, RL rollouts aside).");
  });

  test("nanorag train through the CLI; config flags; Ctrl-C saves and --resume finishes", async () => {
    const p = join(dir, "p");
    const base = ["train", "--kb", join(p, "kb.db"), "--data", join(p, "data"), "--tokenizer", join(p, "tokenizer.json"), ...tiny];
    const bad = cli([...base, "--lr-matix", "0.1"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('Did you mean "--lr-matrix"');
    const badV = cli([...base, "--steps", "x"]);
    expect(badV.code).toBe(2);
    expect(badV.stderr).toContain("--steps must be a number");
    const ok = cli([...base, "--out", join(dir, "t1"), "--steps", "3", "--eval-split", "val", "--eval-n", "3", "--json", "--wandb", "proj"], { env: { WANDB_API_KEY: "" } });
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain("no WANDB_API_KEY");
    const offline = cli([...base, "--out", join(dir, "t0"), "--steps", "2", "--eval-split", "none", "--wandb", "proj"], { env: { WANDB_API_KEY: "k", WANDB_BASE_URL: "http://127.0.0.1:9" } });
    expect(offline.code).toBe(0);
    expect(offline.stderr).toContain("W&B is not reachable");
    expect(existsSync(join(dir, "t0", "metrics.jsonl"))).toBe(true);
    const j = JSON.parse(ok.stdout);
    expect(j.config.steps).toBe(3);
    expect(j.quality.modes.rag.all.n).toBe(3);

    const out = join(dir, "t2");
    const proc = Bun.spawn([BUN, join(ROOT, "src/cli/main.ts"), ...base, "--out", out, "--steps", "400", "--save-every", "1000", "--eval-every", "1000"], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
    const metrics = join(out, "metrics.jsonl");
    for (let i = 0; i < 200 && !(existsSync(metrics) && readFileSync(metrics, "utf8").split("\n").length > 3); i++) await Bun.sleep(100);
    proc.kill("SIGINT");
    const code = await proc.exited;
    expect(code).toBe(130);
    const saved = JSON.parse(readFileSync(join(out, "checkpoints/latest/config.json"), "utf8")).meta.loop;
    expect(saved.step).toBeGreaterThan(0);
    expect(saved.step).toBeLessThan(400);
    expect(existsSync(join(out, "checkpoints/final"))).toBe(false);
    const res = cli([...base, "--out", out, "--steps", String(saved.step + 2), "--save-every", "1000", "--eval-every", "1000", "--resume", "--eval-split", "none"]);
    expect(res.code).toBe(0);
    expect(res.stderr).toContain(`resuming ${out} at step ${saved.step}`);
    const rows = readFileSync(metrics, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(rows.map((r) => r.step)).toEqual(Array.from({ length: saved.step + 2 }, (_, i) => i + 1));
    expect(existsSync(join(out, "checkpoints/final/config.json"))).toBe(true);
  }, 60_000);

  test("pretrain from a corpus trains a tokenizer first; --resume with other settings is refused", () => {
    const p = join(dir, "p");
    const r = cli(["pretrain", "--corpus", join(p, "data/documents.jsonl"), "--out", join(dir, "pre"), "--vocab-size", "350", ...tiny, "--steps", "3", "--json"]);
    expect(r.code).toBe(0);
    expect(existsSync(join(dir, "pre/tokenizer.json"))).toBe(true);
    const again = cli(["pretrain", "--corpus", join(p, "data/documents.jsonl"), "--out", join(dir, "pre"), ...tiny, "--steps", "5", "--lr-matrix", "0.5", "--resume"]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("config differs from the checkpoint's in lrMatrix");
  }, 60_000);
  test("train --task prepares its dataset into <out>/data and builds a missing KB; bad task specs exit 2", () => {
    const tok = join(dir, "p", "tokenizer.json");
    const out = join(dir, "task");
    const kb = join(dir, "task-kb.db");
    const args = ["train", "--task", "synthetic:entities=40,seed=3", "--kb", kb, "--tokenizer", tok, "--out", out, ...tiny, "--steps", "2", "--eval-split", "val", "--eval-n", "2", "--json"];
    const r = cli(args);
    expect(r.code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, "data", "manifest.json"), "utf8"));
    expect(manifest).toMatchObject({ mode: "synthetic", seed: 3, options: { entities: 40 } });
    expect(existsSync(kb)).toBe(true);
    expect(JSON.parse(r.stdout).quality.modes.rag.all.n).toBe(2);
    // the same task again reuses the folder and the KB as they are
    const before = readFileSync(join(out, "data", "train.jsonl"));
    expect(cli([...args, "--steps", "1"]).code).toBe(0);
    expect(readFileSync(join(out, "data", "train.jsonl"))).toEqual(before);
    for (const [spec, message] of [
      ["synthetc", 'unknown task "synthetc" (known: synthetic, hotpotqa). Did you mean "synthetic"?'],
      ["synthetic:entites=4", 'unknown setting "entites" (known: entities, seed). Did you mean "entities"?'],
      ["synthetic:entities=x", "entities must be a number"],
      ["hotpotqa", "--task hotpotqa needs input=FILE"],
    ]) {
      const bad = cli(["train", "--task", spec!, "--kb", join(dir, "none.db"), "--out", join(dir, "bad")]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain(message!);
    }
    const both = cli(["train", "--task", "synthetic", "--data", join(out, "data"), "--kb", kb]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("exactly one of --data DIR");
    expect(existsSync(join(dir, "none.db"))).toBe(false);
  }, 60_000);
});
