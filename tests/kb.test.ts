import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, PETS, tempDir, writeJsonl } from "./helpers.ts";

function buildPets(extra: string[] = []) {
  const dir = tempDir();
  const input = writeJsonl(join(dir, "docs.jsonl"), PETS);
  const kb = join(dir, "kb.db");
  const r = cli(["kb", "build", "--input", input, "--kb", kb, ...extra]);
  expect(r.code).toBe(0);
  return { dir, kb, input };
}

const search = (kb: string, q: string, ...extra: string[]) => {
  const r = cli(["kb", "search", "--kb", kb, "--json", ...extra, q]);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout).hits as Array<{ docId: string; chunkId: number; score: number; title: string; snippet: string }>;
};

describe("kb build reads every input format", () => {
  test("seed documents JSONL, with ids defaulting to doc_{i}", () => {
    const dir = tempDir();
    const input = writeJsonl(join(dir, "d.jsonl"), [{ title: "A", content: "alpha text" }, { id: "x", content: "beta text" }, { content: "gamma text" }]);
    const kb = join(dir, "kb.db");
    expect(cli(["kb", "build", "--input", input, "--kb", kb]).code).toBe(0);
    const ids = cli(["kb", "export", "--kb", kb]).stdout.trim().split("\n").map((l) => JSON.parse(l).id);
    expect(ids).toEqual(["doc_0", "x", "doc_2"]);
  });

  test("BEIR corpus.jsonl", () => {
    const dir = tempDir();
    const input = writeJsonl(join(dir, "corpus.jsonl"), [{ _id: "MED-1", title: "Vitamin D", text: "Vitamin D deficiency and bone health." }, { _id: "MED-2", title: "Statins", text: "Statins lower cholesterol." }]);
    const kb = join(dir, "kb.db");
    const r = cli(["kb", "build", "--input", input, "--kb", kb, "--json"]);
    expect(JSON.parse(r.stdout).format).toBe("beir-corpus");
    expect(search(kb, "cholesterol")[0]!.docId).toBe("MED-2");
  });

  test("a folder of .md and .txt files, titled by their first heading", () => {
    const dir = tempDir();
    mkdirSync(join(dir, "notes/sub"), { recursive: true });
    writeFileSync(join(dir, "notes/a.md"), "# Solar power\nPanels turn sunlight into electricity.\n");
    writeFileSync(join(dir, "notes/sub/b.txt"), "Wind turbines spin in the breeze.\n");
    writeFileSync(join(dir, "notes/ignored.bin"), "xx");
    const kb = join(dir, "kb.db");
    expect(cli(["kb", "build", "--input", join(dir, "notes"), "--kb", kb]).code).toBe(0);
    const hit = search(kb, "sunlight")[0]!;
    expect(hit.docId).toBe("a.md");
    expect(hit.title).toBe("Solar power");
    expect(search(kb, "turbines")[0]!.docId).toBe("sub/b.txt");
  });

  test("HotpotQA rows: each context paragraph is a document, deduplicated by title", () => {
    const dir = tempDir();
    const row = (id: string, titles: string[]) => ({ id, question: "q", answer: "a", supporting_facts: { title: [titles[0]], sent_id: [0] }, context: { title: titles, sentences: titles.map((t) => [`${t} is a place.`, " It is nice."]) } });
    const input = writeJsonl(join(dir, "hotpot.jsonl"), [row("1", ["Paris", "Rome"]), row("2", ["Rome", "Oslo"])]);
    const kb = join(dir, "kb.db");
    const r = cli(["kb", "build", "--input", input, "--kb", kb, "--json"]);
    expect(JSON.parse(r.stdout)).toMatchObject({ format: "hotpotqa", documents: 3 });
    expect(search(kb, "Oslo")[0]!.snippet).toBe("Oslo is a place. It is nice.");
  });

  test("long documents are chunked with overlap and every chunk keeps its document id", () => {
    const dir = tempDir();
    const words = Array.from({ length: 50 }, (_, i) => `w${i}`).join(" ");
    const input = writeJsonl(join(dir, "d.jsonl"), [{ id: "long", content: words }]);
    const kb = join(dir, "kb.db");
    const built = JSON.parse(cli(["kb", "build", "--input", input, "--kb", kb, "--chunk-size", "20", "--chunk-overlap", "5", "--json"]).stdout);
    expect(built.chunks).toBe(3); // windows start at words 0, 15, 30
    const hits = search(kb, "w17", "--top-k", "5");
    expect(hits.map((h) => h.docId)).toEqual(["long", "long"]);
    expect(search(kb, "w17", "--group", "doc")).toHaveLength(1);
  });
});

describe("kb add / remove / stats / export / doctor", () => {
  test("add is idempotent and replaces changed documents", () => {
    const { dir, kb, input } = buildPets();
    const again = JSON.parse(cli(["kb", "add", "--input", input, "--kb", kb, "--json"]).stdout);
    expect(again).toMatchObject({ added: 0, updated: 0, unchanged: 4 });
    const changed = writeJsonl(join(dir, "changed.jsonl"), [{ ...PETS[0], content: "Cats sleep sixteen hours a day." }, { id: "owls", title: "Owls", content: "Owls hunt at night." }]);
    const r = JSON.parse(cli(["kb", "add", "--input", changed, "--kb", kb, "--json"]).stdout);
    expect(r).toMatchObject({ added: 1, updated: 1, unchanged: 0 });
    expect(search(kb, "mice")).toHaveLength(0); // the old text is gone from the index
    expect(search(kb, "sixteen hours")[0]!.docId).toBe("cats");
    expect(search(kb, "owls night")[0]!.docId).toBe("owls");
    expect(cli(["kb", "doctor", "--kb", kb]).code).toBe(0);
  });

  test("remove drops the document from every index; stats and doctor agree", () => {
    const { kb } = buildPets();
    expect(cli(["kb", "remove", "--kb", kb, "--id", "dogs"]).code).toBe(0);
    expect(search(kb, "wolves")).toHaveLength(0);
    expect(search(kb, "wolves", "-r", "simple")).toHaveLength(0);
    const stats = JSON.parse(cli(["kb", "stats", "--kb", kb, "--json"]).stdout);
    expect(stats).toMatchObject({ documents: 3, chunks: 3 });
    expect(stats.indexed).toEqual(expect.arrayContaining(["bm25", "simple"]));
    expect(stats.meta["bm25.k1"]).toBe("0.9");
    const doctor = JSON.parse(cli(["kb", "doctor", "--kb", kb, "--json"]).stdout);
    expect(doctor).toMatchObject({ ok: true, documents: 3 });
    const missing = cli(["kb", "remove", "--kb", kb, "--id", "nope"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no document with id "nope"');
  });

  test("doctor finds an index that disagrees with the chunks", () => {
    const { kb } = buildPets();
    const { Database } = require("bun:sqlite");
    const db = new Database(kb);
    db.run("DELETE FROM bm25_postings WHERE term = 'wolv'");
    db.run("DELETE FROM chunks WHERE doc_id = 'rust'");
    db.close();
    const r = cli(["kb", "doctor", "--kb", kb, "--json"]);
    expect(r.code).toBe(1);
    const problems = JSON.parse(r.stdout).problems.join("\n");
    expect(problems).toContain("documents have no chunks");
    expect(problems).toContain("bm25: index counts 4 chunks, the KB has 3");
  });

  test("export writes JSONL that builds the same KB", () => {
    const { dir, kb } = buildPets();
    const exported = join(dir, "export.jsonl");
    writeFileSync(exported, cli(["kb", "export", "--kb", kb]).stdout);
    const kb2 = join(dir, "kb2.db");
    expect(cli(["kb", "build", "--input", exported, "--kb", kb2]).code).toBe(0);
    expect(search(kb2, "garbage collection")).toEqual(search(kb, "garbage collection"));
  });

  test("reindex rebuilds indexes with the same results", () => {
    const { kb } = buildPets();
    const before = search(kb, "state space model");
    const r = cli(["kb", "reindex", "--kb", kb, "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ chunks: 4, retrievers: expect.arrayContaining(["bm25", "simple"]) });
    expect(search(kb, "state space model")).toEqual(before);
  });

  test("a long build reports progress with rate and ETA on stderr, and only JSON on stdout", () => {
    const dir = tempDir();
    const docs = Array.from({ length: 2500 }, (_, i) => ({ id: `d${i}`, content: `document number ${i} about topic ${i % 17}` }));
    const r = cli(["kb", "build", "--input", writeJsonl(join(dir, "d.jsonl"), docs), "--kb", join(dir, "kb.db"), "--retrievers", "bm25", "--json"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/indexing 2500\/2500 \(100%\) [\d,.]+ docs\/s, ETA \d+s/);
    expect(JSON.parse(r.stdout).documents).toBe(2500);
  });

  test("bm25 k1 and b are persisted from build flags and change scores", () => {
    const a = buildPets();
    const b = buildPets(["--k1", "1.2", "--b", "0.75"]);
    expect(JSON.parse(cli(["kb", "stats", "--kb", b.kb, "--json"]).stdout).meta["bm25.b"]).toBe("0.75");
    expect(search(a.kb, "loyal companions")[0]!.score).not.toBe(search(b.kb, "loyal companions")[0]!.score);
  });
});

describe("retrievers", () => {
  test("zero-score results are never returned and ties break by chunk id", () => {
    const dir = tempDir();
    const input = writeJsonl(join(dir, "d.jsonl"), [
      { id: "b", content: "the same words here" },
      { id: "a", content: "the same words here" },
      { id: "c", content: "unrelated content entirely" },
    ]);
    const kb = join(dir, "kb.db");
    cli(["kb", "build", "--input", input, "--kb", kb]);
    for (const r of ["bm25", "simple"]) {
      const hits = search(kb, "same words", "-r", r, "--top-k", "10");
      expect(hits.map((h) => h.docId)).toEqual(["b", "a"]);
      expect(hits[0]!.score).toBe(hits[1]!.score);
      expect(search(kb, "zebra", "-r", r)).toEqual([]);
    }
  });

  test("simple is TF-IDF cosine: a rare term outweighs a common one", () => {
    const dir = tempDir();
    const input = writeJsonl(join(dir, "d.jsonl"), [
      { id: "common", content: "apple apple banana" },
      { id: "rare", content: "apple kiwi" },
      { id: "filler1", content: "apple pear" },
      { id: "filler2", content: "apple plum" },
    ]);
    const kb = join(dir, "kb.db");
    cli(["kb", "build", "--input", input, "--kb", kb]);
    const hits = search(kb, "apple kiwi", "-r", "simple", "--top-k", "10");
    expect(hits[0]!.docId).toBe("rare");
    // lnc.ltc by hand: N=4, idf(apple)=log(4/4)=0, idf(kiwi)=log(4/1); query vector = kiwi only.
    // doc "rare": weights (1,1), norm sqrt(2) -> score = 1 * 1/sqrt(2).
    expect(hits[0]!.score).toBeCloseTo(1 / Math.SQRT2, 6);
    expect(hits).toHaveLength(1);
  });

  test("bm25 stems and drops stop words", () => {
    const { kb } = buildPets();
    expect(search(kb, "hunting mouse")[0]!.docId).toBe("cats");
    expect(search(kb, "the of and")).toEqual([]);
  });

  test("fuzzy tolerates typos in titles", () => {
    const { kb } = buildPets();
    expect(search(kb, "Mamab", "-r", "fuzzy")[0]!.docId).toBe("mamba");
  });

  test("metadata filters apply to bm25, simple and fuzzy", () => {
    const { kb } = buildPets();
    for (const r of ["bm25", "simple"]) {
      expect(search(kb, "programming language mammals", "-r", r, "--filter", "topic=pets").map((h) => h.docId)).toEqual(["cats"]);
      expect(search(kb, "programming language mammals", "-r", r, "--filter", "source=web,topic=code").map((h) => h.docId)).toEqual(["rust"]);
    }
    expect(search(kb, "Dogs", "-r", "fuzzy", "--filter", "source=web").map((h) => h.docId)).not.toContain("dogs");
  });

  test("human output has rank, score, title, id and snippet", () => {
    const { kb } = buildPets();
    const r = cli(["kb", "search", "--kb", kb, "wolves"]);
    expect(r.stdout).toMatch(/^1\. \d+\.\d{4} {2}Dogs {2}\[dogs #\d+\]\n {4}Dogs are loyal/);
  });
});
