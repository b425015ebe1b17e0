import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { loadQueries } from "../src/eval/retrieval.ts";
import { ndcgAt } from "../src/eval/metrics.ts";
import { Kb } from "../src/kb/kb.ts";
import { readDocuments } from "../src/kb/readers.ts";
import { requestEmbedder } from "../src/dense/index.ts";
import { SHARED_DATA, tempDir } from "./helpers.ts";

// Acceptance: on NFCorpus test, hybrid (bm25 + dense/lsa) is no worse than bm25 by more than 0.005
// nDCG@10. Reads ../shared/data/nfcorpus.zip (never copied into the repository); skipped without it.
const zip = join(SHARED_DATA, "nfcorpus.zip");
const dir = tempDir("nanorag-nf-hybrid-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("NFCorpus hybrid", () => {
  test.skipIf(!existsSync(zip))("hybrid-rrf and hybrid-cc within 0.005 nDCG@10 of bm25 (test split)", async () => {
    expect(Bun.spawnSync(["unzip", "-q", zip, "-d", dir]).exitCode).toBe(0);
    const base = join(dir, "nfcorpus");
    requestEmbedder(null);
    const { kb } = await Kb.build(join(dir, "nf.db"), readDocuments(join(base, "corpus.jsonl")).docs, { retrievers: ["bm25", "dense"] });
    try {
      const set = loadQueries(join(base, "queries.jsonl"), join(base, "qrels/test.tsv"));
      expect(set.queries.length).toBe(323);
      const score: Record<string, number> = {};
      for (const r of ["bm25", "dense", "hybrid-rrf", "hybrid-cc"]) {
        let sum = 0;
        for (const q of set.queries) {
          const hits = await kb.search(r, q.text, { topK: 10, group: "doc" });
          sum += ndcgAt(hits.map((h) => h.docId), q.relevant, 10);
        }
        score[r] = sum / set.queries.length;
      }
      console.error(`NFCorpus test nDCG@10 (top-10 runs): ${Object.entries(score).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(", ")}`);
      expect(score.bm25!).toBeGreaterThan(0.31);
      expect(score.dense!).toBeGreaterThan(0.25);
      expect(score["hybrid-rrf"]!).toBeGreaterThanOrEqual(score.bm25! - 0.005);
      expect(score["hybrid-cc"]!).toBeGreaterThanOrEqual(score.bm25! - 0.005);
    } finally {
      kb.close();
    }
  }, 180_000);
});
