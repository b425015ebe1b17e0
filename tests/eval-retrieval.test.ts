import { describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { allFoundAt, averagePrecision, mrrAt, ndcgAt, precisionAt, recallAt } from "../src/eval/metrics.ts";
import { cli, PETS, SHARED_DATA, tempDir, writeJsonl } from "./helpers.ts";

describe("ranking metrics, by hand", () => {
  const ranked = ["a", "x", "b", "y", "c"];
  const rel = new Map([["a", 2], ["b", 1], ["c", 1], ["z", 1], ["n", 0]]);

  test("nDCG uses linear gains and the ideal ordering of every judged relevant doc", () => {
    const dcg = 2 / Math.log2(2) + 1 / Math.log2(4) + 1 / Math.log2(6);
    const idcg = 2 / Math.log2(2) + 1 / Math.log2(3) + 1 / Math.log2(4) + 1 / Math.log2(5);
    expect(ndcgAt(ranked, rel, 10)).toBeCloseTo(dcg / idcg, 12);
    expect(ndcgAt(ranked, rel, 1)).toBe(1);
  });

  test("recall, precision, MRR, MAP and all-found", () => {
    expect(recallAt(ranked, rel, 3)).toBe(2 / 4);
    expect(precisionAt(ranked, rel, 5)).toBe(3 / 5);
    expect(mrrAt(["x", "y", "b"], rel, 10)).toBe(1 / 3);
    expect(mrrAt(["x", "y", "b"], rel, 2)).toBe(0);
    expect(averagePrecision(ranked, rel)).toBeCloseTo((1 / 1 + 2 / 3 + 3 / 5) / 4, 12);
    expect(allFoundAt(["a", "b"], new Map([["a", 1], ["b", 1]]), 2)).toBe(1);
    expect(allFoundAt(["a", "x", "b"], new Map([["a", 1], ["b", 1]]), 2)).toBe(0);
  });
});

describe("nanorag eval retrieval", () => {
  test("the seed's queries JSONL, one retriever, JSON with the trec_eval-style keys", () => {
    const dir = tempDir();
    const kb = join(dir, "kb.db");
    cli(["kb", "build", "--input", writeJsonl(join(dir, "d.jsonl"), PETS), "--kb", kb]);
    const queries = writeJsonl(join(dir, "q.jsonl"), [
      { query: "which animal descends from wolves", relevant_docs: ["dogs"] },
      { query: "memory safe programming language", relevant_docs: ["rust"] },
      { query: "no judgments here", relevant_docs: [] },
    ]);
    const r = cli(["eval", "retrieval", "--kb", kb, "--queries", queries, "--retriever", "bm25", "--json"]);
    expect(r.code).toBe(0);
    const m = JSON.parse(r.stdout);
    expect(Object.keys(m)).toEqual(expect.arrayContaining(["ndcg@10", "recall@100", "mrr@10", "map", "precision@10", "queries"]));
    expect(m).toMatchObject({ retriever: "bm25", "ndcg@10": 1, "mrr@10": 1, "recall@100": 1, queries: 2 });
  });

  test("a retriever list prints one comparison table", () => {
    const dir = tempDir();
    const kb = join(dir, "kb.db");
    cli(["kb", "build", "--input", writeJsonl(join(dir, "d.jsonl"), PETS), "--kb", kb]);
    const queries = writeJsonl(join(dir, "q.jsonl"), [{ query: "wolves", relevant_docs: ["dogs"] }]);
    const r = cli(["eval", "retrieval", "--kb", kb, "--queries", queries, "--retriever", "bm25,simple"]);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^retriever\s+ndcg@10\s+recall@100\s+mrr@10\s+map\s+precision@10\s+queries/);
    expect(lines.slice(2).map((l) => l.split(/\s+/)[0])).toEqual(["bm25", "simple"]);
  });

  test("BEIR queries without --qrels, and a malformed qrels line, are refused", () => {
    const dir = tempDir();
    const kb = join(dir, "kb.db");
    cli(["kb", "build", "--input", writeJsonl(join(dir, "d.jsonl"), PETS), "--kb", kb]);
    const queries = writeJsonl(join(dir, "queries.jsonl"), [{ _id: "q1", text: "wolves" }]);
    expect(cli(["eval", "retrieval", "--kb", kb, "--queries", queries]).stderr).toContain("pass its judgments with --qrels");
    const qrels = join(dir, "qrels.tsv");
    writeFileSync(qrels, "query-id\tcorpus-id\tscore\nq1\tdogs\t1\nq1 dogs\n");
    const r = cli(["eval", "retrieval", "--kb", kb, "--queries", queries, "--qrels", qrels]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/qrels\.tsv:3: field "score"/);
  });

  const nfcorpus = join(SHARED_DATA, "nfcorpus.zip");
  test.skipIf(!existsSync(nfcorpus))("NFCorpus test: bm25 nDCG@10 >= 0.315 and simple below it (reads ../shared/data)", () => {
    const dir = tempDir();
    expect(Bun.spawnSync(["unzip", "-q", nfcorpus, "-d", dir]).exitCode).toBe(0);
    const base = join(dir, "nfcorpus");
    const kb = join(dir, "nf.db");
    expect(cli(["kb", "build", "--input", join(base, "corpus.jsonl"), "--kb", kb, "--retrievers", "bm25,simple"]).code).toBe(0);
    const r = cli(["eval", "retrieval", "--kb", kb, "--queries", join(base, "queries.jsonl"), "--qrels", join(base, "qrels/test.tsv"), "-r", "bm25,simple", "--json"]);
    expect(r.code).toBe(0);
    const [bm25, simple] = JSON.parse(r.stdout);
    console.error(`NFCorpus test: bm25 ndcg@10 ${bm25["ndcg@10"]} R@100 ${bm25["recall@100"]}; simple ndcg@10 ${simple["ndcg@10"]}`);
    expect(bm25.queries).toBe(323);
    expect(bm25["ndcg@10"]).toBeGreaterThanOrEqual(0.315);
    expect(bm25["recall@100"]).toBeGreaterThan(0.24);
    expect(simple["ndcg@10"]).toBeLessThan(bm25["ndcg@10"]);
  });
});
