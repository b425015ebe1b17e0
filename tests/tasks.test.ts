import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Hit } from "../src/plugin-api.ts";
import { ABSTAIN, type QuestionRow } from "../src/data/schema.ts";
import { generateWorld } from "../src/data/synthetic.ts";
import { answerWithCitations, docMap, DynamicRagTask, MixtureTask, MultiHopTask, RetrievalCache, type SearchFn, StaticRagTask, renderTask, type RenderStats } from "../src/rag/tasks.ts";
import { parse, parseCitations, type Conversation } from "../src/rag/template.ts";
import { trainBpe } from "../src/tokenizer/train.ts";
import { tempDir } from "./helpers.ts";

const dir = tempDir("nanorag-tasks-");
const world = generateWorld({ entities: 120, seed: 5 });
const docs = docMap(world.documents);
const { tokenizer: tok } = trainBpe(world.documents.map((d) => `${d.title}\n${d.content}`), { vocabSize: 1000 });

/** A fake retriever: word overlap with title + text, deterministic, counting calls. */
function fakeSearch(): SearchFn & { calls: number } {
  const f = (async (query: string, topK: number): Promise<Hit[]> => {
    f.calls++;
    const q = new Set(query.toLowerCase().match(/\w+/g));
    const scored = world.documents.map((d, i) => {
      const words = `${d.title} ${d.content}`.toLowerCase().match(/\w+/g) ?? [];
      let s = 0;
      for (const w of new Set(words)) if (q.has(w)) s += w.length > 3 ? 2 : 0.1;
      return { chunkId: i, docId: d.id, score: s, title: d.title, text: d.content };
    });
    return scored.filter((h) => h.score > 0).sort((a, b) => b.score - a.score || a.chunkId - b.chunkId).slice(0, topK);
  }) as SearchFn & { calls: number };
  f.calls = 0;
  return f;
}

const answerOf = (c: Conversation) => {
  const a = c.messages.at(-1)!;
  if (a.role !== "assistant") throw new Error("no answer");
  return typeof a.content === "string" ? a.content : (a.content.at(-1) as { text: string }).text;
};
const docsOf = (c: Conversation) => (c.messages.find((m) => m.role === "docs") as { docs: { id: string }[] }).docs;
const train = world.questions.train;
const single = train.filter((q) => q.type === "single");
const bridge = train.filter((q) => q.type === "bridge");
const unans = train.filter((q) => q.type === "unanswerable");

describe("answers", () => {
  test("cite the gold documents by their number, or abstain", () => {
    const q: QuestionRow = { id: "x", question: "?", answer: "Lisbon", relevant_docs: ["b", "c"], answerable: true, type: "bridge" };
    const d = (id: string) => ({ id, title: id, text: id });
    expect(answerWithCitations(q, [d("a"), d("c"), d("b")])).toBe("Lisbon [2][3].");
    expect(answerWithCitations(q, [d("a")])).toBe(ABSTAIN);
    expect(answerWithCitations({ ...q, answerable: false }, [d("b")])).toBe(ABSTAIN);
  });
});

describe("DynamicRagTask", () => {
  test("retrieves once per (retriever, topK, query): epochs are reproducible", async () => {
    const search = fakeSearch();
    const cachePath = join(dir, "cache.jsonl");
    const task = new DynamicRagTask(single.slice(0, 20), search, { retriever: "fake", topK: 3, docs, seed: 1, cache: new RetrievalCache(cachePath) });
    const e0 = await Promise.all(Array.from({ length: 20 }, (_, i) => task.get(i, 0)));
    expect(search.calls).toBe(20);
    const again = await Promise.all(Array.from({ length: 20 }, (_, i) => task.get(i, 0)));
    expect(search.calls).toBe(20);
    expect(again).toEqual(e0);
    task.cache.save();
    // a new process reads the cache file and never searches
    const search2 = fakeSearch();
    const task2 = new DynamicRagTask(single.slice(0, 20), search2, { retriever: "fake", topK: 3, docs, seed: 1, cache: new RetrievalCache(cachePath) });
    expect(await task2.get(3, 0)).toEqual(e0[3]!);
    expect(search2.calls).toBe(0);
    // another retriever is another cache key
    const task3 = new DynamicRagTask(single.slice(0, 1), search2, { retriever: "other", topK: 3, docs, cache: task2.cache });
    await task3.get(0);
    expect(search2.calls).toBe(1);
  });

  test("the gold document is in context and cited; answers are grounded", async () => {
    const task = new DynamicRagTask(single.slice(0, 40), fakeSearch(), { retriever: "fake", topK: 3, docs, seed: 2 });
    for (let i = 0; i < 40; i++) {
      const c = await task.get(i);
      const ctx = docsOf(c);
      const q = single[i]!;
      const n = ctx.findIndex((d) => d.id === q.relevant_docs[0]) + 1;
      expect(n).toBeGreaterThan(0);
      expect(ctx.length).toBeLessThanOrEqual(3);
      expect(parseCitations(answerOf(c))).toEqual([n]);
      expect(answerOf(c).startsWith(q.answer)).toBe(true);
    }
  });

  test("distractors and abstention examples teach 'the documents do not say'", async () => {
    const qs = [...single.slice(0, 60), ...unans.slice(0, 10)];
    const task = new DynamicRagTask(qs, fakeSearch(), { retriever: "fake", topK: 3, docs, seed: 3, distractors: 2, abstainRate: 0.3 });
    let abstained = 0;
    for (let i = 0; i < qs.length; i++) {
      const c = await task.get(i);
      const ctx = docsOf(c);
      expect(ctx.length).toBeGreaterThanOrEqual(2);
      const gold = ctx.some((d) => qs[i]!.relevant_docs.includes(d.id));
      if (answerOf(c) === ABSTAIN) {
        abstained++;
        if (qs[i]!.answerable) expect(gold).toBe(false);
      } else expect(gold).toBe(true);
    }
    for (let i = 60; i < 70; i++) expect(answerOf(await task.get(i))).toBe(ABSTAIN);
    expect(abstained).toBeGreaterThan(10 + 8);
    expect(abstained).toBeLessThan(10 + 32);
    // different epochs make different (but reproducible) choices
    const a = await Promise.all(qs.map((_, i) => task.get(i, 1)));
    const b = await Promise.all(qs.map((_, i) => task.get(i, 1)));
    expect(a).toEqual(b);
  });
});

describe("StaticRagTask", () => {
  test("pre-retrieved documents", async () => {
    const q = single[0]!;
    const task = new StaticRagTask([{ question: q, docs: [docs.get(q.relevant_docs[0]!)!] }], { system: null });
    const c = await task.get(0);
    expect(c.messages[0]).toEqual({ role: "user", content: q.question });
    expect(answerOf(c)).toBe(`${q.answer} [1].`);
  });
});

describe("MultiHopTask", () => {
  test("writes a query for each hop whose document is missing, then cites both", async () => {
    const task = new MultiHopTask(bridge.slice(0, 30), fakeSearch(), { retriever: "fake", topK: 2, docs, seed: 4 });
    let withQueries = 0;
    for (let i = 0; i < 30; i++) {
      const c = await task.get(i);
      const a = c.messages.at(-1)!;
      if (a.role !== "assistant") throw new Error("expected an answer");
      const parts = typeof a.content === "string" ? [{ type: "text" as const, text: a.content }] : a.content;
      const queries = parts.filter((p) => p.type === "query");
      if (queries.length) withQueries++;
      const all = [...docsOf(c), ...parts.flatMap((p) => (p.type === "docs" ? p.docs : []))];
      const q = bridge[i]!;
      for (const g of q.relevant_docs) expect(all.some((d) => d.id === g)).toBe(true);
      const text = answerOf(c);
      expect(text.startsWith(q.answer)).toBe(true);
      expect(parseCitations(text).length).toBe(2);
      // renders and parses back
      const { render } = await import("../src/rag/template.ts");
      const r = render(tok, c);
      expect(parse(tok, r.ids, r.docs).messages.at(-1)).toEqual(a);
    }
    expect(withQueries).toBeGreaterThan(0);
  });
});

describe("MixtureTask", () => {
  test("mixes by ratio on a seeded schedule", async () => {
    const s = new StaticRagTask(single.slice(0, 50).map((q) => ({ question: q, docs: [docs.get(q.relevant_docs[0]!)!] })), { name: "s" });
    const u = new StaticRagTask(unans.slice(0, 10).map((q) => ({ question: q, docs: [docs.get(q.relevant_docs[0]!)!] })), { name: "u" });
    const mix = new MixtureTask([{ task: s, ratio: 3 }, { task: u, ratio: 1 }], { size: 100, seed: 9 });
    expect(mix.size).toBe(100);
    const names = Array.from({ length: 100 }, (_, i) => mix.at(i).task.name);
    expect(names.filter((n) => n === "s").length).toBe(75);
    expect(names.filter((n) => n === "u").length).toBe(25);
    const again = new MixtureTask([{ task: s, ratio: 3 }, { task: u, ratio: 1 }], { size: 100, seed: 9 });
    expect(Array.from({ length: 100 }, (_, i) => again.at(i))).toEqual(Array.from({ length: 100 }, (_, i) => mix.at(i)));
    expect(await mix.get(5)).toEqual(await again.get(5));
  });
});

describe("renderTask", () => {
  test("renders ids and weights; over-budget conversations are counted, not cut", async () => {
    const task = new DynamicRagTask(single.slice(0, 30), fakeSearch(), { retriever: "fake", topK: 3, docs, seed: 1 });
    const stats: RenderStats = { rendered: 0, overBudget: 0, tokens: 0, trainedTokens: 0, droppedDocs: 0 };
    const out = [];
    for await (const r of renderTask(task, tok, { maxTokens: 160, stats })) out.push(r);
    expect(stats.rendered).toBe(out.length);
    expect(stats.rendered + stats.overBudget).toBe(30);
    for (const r of out) {
      expect(r.ids.length).toBeLessThanOrEqual(160);
      expect(r.weights.length).toBe(r.ids.length);
    }
    expect(stats.trainedTokens).toBeGreaterThan(0);
    const tight = { rendered: 0, overBudget: 0, tokens: 0, trainedTokens: 0, droppedDocs: 0 };
    for await (const _ of renderTask(task, tok, { maxTokens: 20, stats: tight }));
    expect(tight.overBudget).toBe(30);
  });
});

describe("with a real knowledge base", () => {
  test("synthetic world -> kb build -> bm25 search drives a DynamicRagTask", async () => {
    const docsPath = join(dir, "world.jsonl");
    writeFileSync(docsPath, world.documents.map((d) => JSON.stringify(d)).join("\n"));
    const kbPath = join(dir, "world.db");
    const b = Bun.spawnSync(["./node_modules/.bin/bun", "src/cli/main.ts", "kb", "build", "--input", docsPath, "--kb", kbPath], { env: { ...process.env, NO_COLOR: "1" } });
    expect(b.exitCode).toBe(0);
    const { Kb } = await import("../src/kb/kb.ts");
    const { loadPlugins } = await import("../src/retrieval/host.ts");
    await loadPlugins();
    const kb = await Kb.open(kbPath);
    try {
      const search: SearchFn = (q, k) => kb.search("bm25", q, { topK: k });
      const task = new DynamicRagTask(single.slice(0, 30), search, { retriever: "bm25", topK: 3, docs, ensureGold: false });
      let goldInTop3 = 0;
      for (let i = 0; i < 30; i++) {
        const c = await task.get(i);
        if (answerOf(c) !== ABSTAIN) goldInTop3++;
      }
      // the subject's name is in its own document: BM25 should find it nearly always
      expect(goldInTop3).toBeGreaterThanOrEqual(25);
    } finally {
      kb.close();
    }
  });
});
