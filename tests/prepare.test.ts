import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readDocuments, readQuestions } from "../src/data/schema.ts";
import { generateWorld } from "../src/data/synthetic.ts";
import { tempDir } from "./helpers.ts";

const BUN = "./node_modules/.bin/bun";
const dir = tempDir("nanorag-prep-");
const cli = (...args: string[]) => Bun.spawnSync([BUN, "src/cli/main.ts", "prepare", ...args], { env: { ...process.env, NO_COLOR: "1" } });
const jsonl = (p: string) => readFileSync(p, "utf8").trim().split("\n").map((l) => JSON.parse(l));

describe("prepare --mode example", () => {
  test("writes the seed's 10 documents and 5 queries", () => {
    const out = join(dir, "example");
    const r = cli("--mode", "example", "--out", out, "--json");
    expect(r.exitCode).toBe(0);
    const docs = jsonl(join(out, "documents.jsonl"));
    expect(docs.map((d) => d.id)).toEqual(Array.from({ length: 10 }, (_, i) => `doc_${String(i + 1).padStart(3, "0")}`));
    for (const d of docs) expect(Object.keys(d)).toEqual(["id", "title", "content", "source", "metadata"]);
    expect(docs[5].title).toBe("Retrieval-Augmented Generation");
    expect(docs[5].metadata).toEqual({ topic: "NLP", difficulty: "advanced" });
    const qs = jsonl(join(out, "queries.jsonl"));
    expect(qs.map((q) => [q.query, q.relevant_docs])).toEqual([
      ["What is machine learning?", ["doc_001", "doc_008"]],
      ["How do transformers work?", ["doc_004", "doc_009"]],
      ["What is RAG?", ["doc_006"]],
      ["What are state space models?", ["doc_005", "doc_004"]],
      ["How do you train neural networks?", ["doc_008", "doc_002"]],
    ]);
    for (const q of qs) expect(typeof q.expected_answer).toBe("string");
    const m = JSON.parse(r.stdout.toString());
    expect(m.counts).toEqual({ documents: 10, queries: 5 });
    // the seed's query file reads as a QA set
    expect(readQuestions(join(out, "queries.jsonl"), new Set(docs.map((d) => d.id))).length).toBe(5);
  });
});

describe("prepare --mode synthetic", () => {
  test("is deterministic per seed and differs across seeds", () => {
    const a = cli("--mode", "synthetic", "--entities", "300", "--seed", "3", "--out", join(dir, "a"), "--json");
    const b = cli("--mode", "synthetic", "--entities", "300", "--seed", "3", "--out", join(dir, "b"), "--json");
    const c = cli("--mode", "synthetic", "--entities", "300", "--seed", "4", "--out", join(dir, "c"), "--json");
    expect(a.exitCode).toBe(0);
    const [ma, mb, mc] = [a, b, c].map((r) => JSON.parse(r.stdout.toString()));
    expect(ma.files).toEqual(mb.files);
    expect(ma.files["documents.jsonl"].sha256).not.toBe(mc.files["documents.jsonl"].sha256);
    expect(ma.seed).toBe(3);
    expect(ma.counts.documents).toBe(300);
    expect(JSON.parse(readFileSync(join(dir, "a", "manifest.json"), "utf8"))).toEqual(ma);
  });

  const w = generateWorld({ entities: 1000, seed: 11 });
  const docs = new Map(w.documents.map((d) => [d.id, d]));

  test("documents are valid KB input", () => {
    const p = join(dir, "syn-docs.jsonl");
    writeFileSync(p, w.documents.map((d) => JSON.stringify(d)).join("\n"));
    expect(readDocuments(p).length).toBe(1000);
    const kinds = new Set(w.documents.map((d) => d.metadata.type));
    expect(kinds).toEqual(new Set(["person", "city", "company", "country"]));
  });

  test("questions: single-hop, two-hop bridge and unanswerable, with gold answers in gold documents", () => {
    const all = [...w.questions.train, ...w.questions.val, ...w.questions.test];
    const types = new Set(all.map((q) => q.type));
    expect(types).toEqual(new Set(["single", "bridge", "unanswerable"]));
    for (const q of all) {
      for (const id of q.relevant_docs) expect(docs.has(id)).toBe(true);
      if (q.type === "single") expect(docs.get(q.relevant_docs[0]!)!.content).toContain(q.answer);
      if (q.type === "bridge") {
        expect(q.relevant_docs.length).toBe(2);
        expect(q.hops!.map((h) => h.doc)).toEqual(q.relevant_docs);
        // the first document names the bridge entity; the second holds the answer
        const [d1, d2] = q.relevant_docs.map((id) => docs.get(id)!);
        expect(d1!.content).toContain(d2!.title);
        expect(d2!.content).toContain(q.answer);
      }
      if (q.type === "unanswerable") {
        expect(q.answerable).toBe(false);
        expect(q.answer).toBe("The documents do not say.");
      }
    }
    // sentence templates vary
    const intros = new Set(w.documents.filter((d) => d.metadata.type === "person").map((d) => d.content.replace(d.title, "X").split(".")[0]));
    expect(intros.size).toBeGreaterThan(1);
  });

  test("test questions concern entities whose facts never appear in any training answer", () => {
    const split = (id: string) => docs.get(id)!.metadata.split;
    for (const s of ["train", "val", "test"] as const) for (const q of w.questions[s]) for (const id of q.relevant_docs) expect(split(id)).toBe(s);
    const testNames = new Set(w.documents.filter((d) => d.metadata.split === "test").map((d) => d.title));
    const trainAnswers = new Set(w.questions.train.map((q) => q.answer));
    for (const n of testNames) expect(trainAnswers.has(n)).toBe(false);
    const trainDocs = new Set(w.questions.train.flatMap((q) => q.relevant_docs));
    for (const q of w.questions.test) for (const id of q.relevant_docs) expect(trainDocs.has(id)).toBe(false);
    expect(w.questions.test.length).toBeGreaterThan(50);
    expect(w.questions.val.length).toBeGreaterThan(50);
  });
});

describe("prepare --mode build", () => {
  test("validates with line-numbered errors and writes splits", () => {
    const d = join(dir, "docs.jsonl");
    const q = join(dir, "qa.jsonl");
    writeFileSync(d, ['{"id":"a","title":"A","content":"Alpha."}', "", '{"id":"b","title":"B","content":"Beta.","source":"x","metadata":{"k":1}}'].join("\n"));
    writeFileSync(q, Array.from({ length: 10 }, (_, i) => JSON.stringify({ question: `q${i}?`, answer: "Alpha", relevant_docs: ["a"] })).join("\n"));
    const ok = cli("--mode", "build", "--documents", d, "--questions", q, "--out", join(dir, "build"), "--json", "--seed", "1");
    expect(ok.exitCode).toBe(0);
    const m = JSON.parse(ok.stdout.toString());
    expect(m.counts.questions.train.total + m.counts.questions.val.total).toBe(10);
    expect(m.counts.questions.val.total).toBe(1);

    writeFileSync(q, ['{"question":"q?","answer":"A","relevant_docs":["a"]}', '{"question":"q2?","answer":"A","relevant_docs":["zzz"]}'].join("\n"));
    const bad = cli("--mode", "build", "--documents", d, "--questions", q, "--out", join(dir, "build2"));
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toContain(`${q}:2: field "relevant_docs": unknown document id "zzz"`);

    writeFileSync(d, ['{"id":"a","title":"A","content":"Alpha."}', '{"id":"a","title":"A2","content":"Again."}'].join("\n"));
    const dup = cli("--mode", "build", "--documents", d, "--questions", q, "--out", join(dir, "build3"));
    expect(dup.stderr.toString()).toContain(`${d}:2: field "id": duplicate id "a" (first on line 1)`);
    writeFileSync(d, '{"id":"a","title":"A"}\n');
    expect(cli("--mode", "build", "--documents", d, "--questions", q, "--out", join(dir, "b4")).stderr.toString()).toContain(':1: field "content": is missing');
    writeFileSync(d, "{not json\n");
    expect(cli("--mode", "build", "--documents", d, "--questions", q, "--out", join(dir, "b5")).stderr.toString()).toContain(":1: malformed JSON");
    const missing = cli("--mode", "build", "--out", join(dir, "b6"));
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr.toString()).toContain("--documents FILE and --questions FILE");
  });
});

describe("prepare --mode hotpotqa", () => {
  const rows = [
    {
      _id: "h1",
      question: "Which country is the birthplace of the founder of Acme?",
      answer: "France",
      type: "bridge",
      supporting_facts: [["Acme", 0], ["Jean Dupont", 1]],
      context: [["Acme", ["Acme was founded by Jean Dupont.", " It makes anvils."]], ["Jean Dupont", ["Jean Dupont is an engineer.", " He was born in France."]], ["Noise", ["Unrelated."]]],
    },
    {
      _id: "h2",
      question: "Is Acme older than Noise?",
      answer: "yes",
      type: "comparison",
      supporting_facts: [["Acme", 0], ["Noise", 0]],
      context: [["Acme", ["Acme was founded by Jean Dupont.", " It makes anvils."]], ["Noise", ["Unrelated."]]],
    },
  ];
  test("JSON array input: paragraphs become deduplicated documents, supporting facts the relevant docs", () => {
    const p = join(dir, "hotpot.json");
    writeFileSync(p, JSON.stringify(rows));
    const r = cli("--mode", "hotpotqa", "--input", p, "--out", join(dir, "hp"), "--val-fraction", "0", "--json");
    expect(r.exitCode).toBe(0);
    const docs = jsonl(join(dir, "hp", "documents.jsonl"));
    expect(docs.map((d) => d.id)).toEqual(["Acme", "Jean Dupont", "Noise"]);
    expect(docs[1].content).toBe("Jean Dupont is an engineer. He was born in France.");
    const qs = jsonl(join(dir, "hp", "train.jsonl"));
    expect(qs.map((q) => [q.id, q.relevant_docs, q.type])).toEqual([
      ["h1", ["Acme", "Jean Dupont"], "bridge"],
      ["h2", ["Acme", "Noise"], "comparison"],
    ]);
  });
  test("Hugging Face JSONL input, with line-numbered errors", () => {
    const hf = rows.map((r) => ({
      id: r._id,
      question: r.question,
      answer: r.answer,
      type: r.type,
      supporting_facts: { title: r.supporting_facts.map((f) => f[0]), sent_id: r.supporting_facts.map((f) => f[1]) },
      context: { title: r.context.map((c) => c[0]), sentences: r.context.map((c) => c[1]) },
    }));
    const p = join(dir, "hotpot.jsonl");
    writeFileSync(p, hf.map((r) => JSON.stringify(r)).join("\n"));
    const r = cli("--mode", "hotpotqa", "--input", p, "--out", join(dir, "hp2"), "--json");
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout.toString()).counts.documents).toBe(3);
    writeFileSync(p, [JSON.stringify(hf[0]), JSON.stringify({ ...hf[1], supporting_facts: { title: ["Missing"], sent_id: [0] } })].join("\n"));
    const bad = cli("--mode", "hotpotqa", "--input", p, "--out", join(dir, "hp3"));
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toContain(`${p}:2: field "supporting_facts": title "Missing" is not among the question's context paragraphs`);
  });
  test("a wrong mode names the valid ones", () => {
    const r = cli("--mode", "synthetc");
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toContain('Did you mean "synthetic"');
  });
});
