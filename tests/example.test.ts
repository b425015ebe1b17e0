import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cli, tempDir } from "./helpers.ts";

describe("the seed's example: 10 documents, 5 queries, end to end through the CLI", () => {
  const dir = tempDir();
  const data = join(dir, "example");
  const kb = join(dir, "kb.db");

  test("prepare, build, search and evaluate", () => {
    expect(cli(["prepare", "--mode", "example", "--out", data]).code).toBe(0);
    const built = JSON.parse(cli(["kb", "build", "--input", join(data, "documents.jsonl"), "--kb", kb, "--json"]).stdout);
    expect(built).toMatchObject({ documents: 10, chunks: 10 });
    const queries = readFileSync(join(data, "queries.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(queries).toHaveLength(5);
    for (const q of queries) {
      const hits = JSON.parse(cli(["kb", "search", "--kb", kb, "--top-k", "3", "--json", q.query]).stdout).hits;
      expect(hits.some((h: { docId: string }) => q.relevant_docs.includes(h.docId))).toBe(true);
    }
    const m = JSON.parse(cli(["eval", "retrieval", "--kb", kb, "--queries", join(data, "queries.jsonl"), "-r", "bm25", "--json"]).stdout);
    expect(m.queries).toBe(5);
    expect(m["recall@100"]).toBe(1);
    expect(m["ndcg@10"]).toBeGreaterThan(0.7);
  });

  test("the seed's two reproduced bugs are gone: punctuation and zero-score results", () => {
    // The seed returned doc_001..003 at score 0 for nonsense, and matched nothing for "learning?".
    expect(JSON.parse(cli(["kb", "search", "--kb", kb, "--json", "qwzx vvbn"]).stdout).hits).toEqual([]);
    for (const r of ["bm25", "simple"]) {
      const hits = JSON.parse(cli(["kb", "search", "--kb", kb, "-r", r, "--json", "learning?"]).stdout).hits;
      expect(hits.length).toBeGreaterThan(0);
      expect(hits.every((h: { score: number }) => h.score > 0)).toBe(true);
    }
  });
});
