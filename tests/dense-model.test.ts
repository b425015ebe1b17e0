import { beforeAll, describe, expect, test } from "bun:test";
import { cpSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import * as sqliteVec from "sqlite-vec";
import { loadModel } from "../src/answer/load.ts";
import { normalize } from "../src/dense/embedder.ts";
import { VectorStore } from "../src/dense/store.ts";
import { cli, tempDir } from "./helpers.ts";

/**
 * Two tiny models (cpu_tiny, different seeds) pretrained for a few steps on the seed's example, with a
 * context (320) longer than every chunk (about 200-300 tokens), so batches hold rows of unequal length.
 */
let dir = "";
const run = (args: string[]) => {
  const r = cli(args);
  if (r.code !== 0) throw new Error(`nanorag ${args.join(" ")} failed:\n${r.stderr}`);
  return r;
};

beforeAll(() => {
  dir = tempDir("nanorag-dense-model-");
  run(["prepare", "--mode", "example", "--out", join(dir, "example")]);
  run(["kb", "build", "--input", join(dir, "example/documents.jsonl"), "--kb", join(dir, "pre.db"), "--retrievers", "bm25"]);
  for (const seed of [1, 2]) {
    run(["pretrain", "--kb", join(dir, "pre.db"), "--config", "cpu_tiny", "--threads", "1", "--steps", "2", "--seq-len", "320", "--vocab-size", "300", "--seed", String(seed), "--out", join(dir, `m${seed}`)]);
  }
}, 120_000);

/** The unit vector nr_embed gives one text alone (BOS read, left out of the mean; cut at the trained length): what batching must reproduce. */
function alone(modelDir: string, text: string): Float32Array {
  const { model, tokenizer, seqLen } = loadModel(modelDir);
  const ids = [tokenizer.specialId("<|bos|>"), ...tokenizer.encode(text)].slice(0, seqLen);
  const mask = new Float32Array(ids.length).fill(1);
  mask[0] = 0;
  const v = model.embed(ids, 1, ids.length, mask);
  model.free();
  normalize(v);
  return v;
}

describe("the model embedder (pooled hidden states of a nanorag checkpoint)", () => {
  test("kb build embeds with a checkpoint; search works; another checkpoint is refused", () => {
    const kb = join(dir, "kb.db");
    const m1 = join(dir, "m1");
    run(["kb", "build", "--input", join(dir, "example/documents.jsonl"), "--kb", kb, "--retrievers", "dense", "--embedder", `model:checkpoint=${m1},batch=3`]);
    const stats = JSON.parse(run(["kb", "stats", "--kb", kb, "--json"]).stdout);
    const identity = JSON.parse(stats.meta["dense.embedder"]);
    expect([identity.name, identity.dim, identity.settings.checkpoint]).toEqual(["model", 32, join(m1, "checkpoints/final")]);

    // Stored vectors: batched, padded rows give the same vector as each text embedded alone.
    const db = new Database(kb, { readonly: true });
    sqliteVec.load(db);
    const store = new VectorStore(db, 32);
    const chunks = db.query("SELECT c.id, d.title, c.text FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.id").all() as { id: number; title: string; text: string }[];
    expect(store.count()).toBe(chunks.length);
    for (const c of chunks) {
      const want = alone(m1, c.title && !c.text.startsWith(c.title) ? `${c.title}\n${c.text}` : c.text);
      const got = store.vector(c.id)!;
      for (let i = 0; i < 32; i++) expect(got[i]!).toBeCloseTo(want[i]!, 5);
    }
    db.close();

    const hits = JSON.parse(run(["kb", "search", "--kb", kb, "-r", "dense", "--top-k", "3", "--json", "what is retrieval"]).stdout).hits;
    expect(hits.length).toBe(3);
    // The same checkpoint by another spelling of its path is the same embedder.
    expect(cli(["kb", "search", "--kb", kb, "-r", "dense", "--opt", `embedder=model:checkpoint=${m1}/`, "x"], { cwd: dir }).code).toBe(0);

    const other = cli(["kb", "search", "--kb", kb, "-r", "dense", "--opt", `embedder=model:checkpoint=${join(dir, "m2")}`, "x"]);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain("embedder mismatch");
    // A retrained checkpoint at the same path: its weights hash no longer matches the KB's.
    cpSync(join(dir, "m2"), m1, { recursive: true, force: true });
    const retrained = cli(["kb", "search", "--kb", kb, "-r", "dense", "x"]);
    expect(retrained.code).toBe(2);
    expect(retrained.stderr).toContain("is not the one this KB was embedded with");
  }, 120_000);

  test("a missing checkpoint or a bad option is a clear error and writes no KB", () => {
    const kb = join(dir, "bad.db");
    const missing = cli(["kb", "build", "--input", join(dir, "example/documents.jsonl"), "--kb", kb, "--retrievers", "dense", "--embedder", `model:checkpoint=${join(dir, "nope")}`]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("checkpoint=");
    const bad = cli(["kb", "build", "--input", join(dir, "example/documents.jsonl"), "--kb", kb, "--retrievers", "dense", "--embedder", `model:checkpoint=${join(dir, "m2")},batch=0`]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("batch=0");
    expect(Bun.file(kb).size).toBe(0);
  }, 60_000);
});
