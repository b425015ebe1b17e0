import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { cli, SHARED_DATA, tempDir } from "./helpers.ts";

// Acceptance (issue #3): `kb build` reads HotpotQA distractor rows (each context paragraph a document
// titled by its title, deduplicated across questions) and `eval retrieval` reports, per retriever, the
// share of questions with both gold paragraphs in the top 2, 5 and 10 (BM25 reference: about 0.73 at 10).
// Reads ../shared/data (never copied into the repository); skipped without it.
const rows = join(SHARED_DATA, "hotpotqa_dev_distractor_300.jsonl");
const dir = tempDir("nanorag-hotpot-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("HotpotQA retrieval through the CLI", () => {
  test.skipIf(!existsSync(rows))("all-gold@2/5/10 for every retriever; bm25 near the 0.73 reference at 10", () => {
    const kb = join(dir, "hotpot.db");
    const build = cli(["kb", "build", "--input", rows, "--kb", kb, "--json"]);
    expect(build.code).toBe(0);
    const built = JSON.parse(build.stdout);
    expect(built.format).toBe("hotpotqa");
    // 300 questions x 10 paragraphs, with titles shared across questions stored once
    expect(built.documents).toBeGreaterThan(2500);
    expect(built.documents).toBeLessThan(3000);

    const retrievers = ["simple", "bm25", "dense", "hybrid-rrf", "hybrid-cc"];
    const r = cli(["eval", "retrieval", "--kb", kb, "--queries", rows, "--retriever", retrievers.join(","), "--json"]);
    expect(r.code).toBe(0);
    const table: Record<string, number | string>[] = JSON.parse(r.stdout);
    expect(table.map((row) => row.retriever)).toEqual(retrievers);
    for (const row of table) {
      expect(row.queries).toBe(300);
      const [at2, at5, at10] = [row["all_gold@2"], row["all_gold@5"], row["all_gold@10"]] as number[];
      expect(at2).toBeGreaterThan(0);
      expect(at2).toBeLessThanOrEqual(at5!);
      expect(at5).toBeLessThanOrEqual(at10!);
    }
    const bm25 = table.find((row) => row.retriever === "bm25")!;
    console.error(`HotpotQA all_gold@10: ${table.map((row) => `${row.retriever} ${row["all_gold@10"]}`).join(", ")}`);
    expect(bm25["all_gold@10"]).toBeGreaterThan(0.7);
    expect(bm25["all_gold@10"]).toBeLessThan(0.77);
  });
});
