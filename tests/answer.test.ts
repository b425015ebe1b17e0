import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { answerQuestion } from "../src/answer/answer.ts";
import { Answerer } from "../src/answer/answerer.ts";
import { mapCitations, snippet, sourcesOf } from "../src/answer/citations.ts";
import { checkpointDir } from "../src/answer/load.ts";
import type { Model } from "../src/engine/index.ts";
import type { RagDoc, RenderedDoc } from "../src/rag/template.ts";
import { Tokenizer } from "../src/tokenizer/bpe.ts";
import { TextStream } from "../src/tokenizer/stream.ts";
import { trainBpe } from "../src/tokenizer/train.ts";
import { type AnswerFixture, answerFixture } from "./answer-fixture.ts";

const rendered = (ids: string[]): RenderedDoc[] => ids.map((id, i) => ({ n: i + 1, original: i + 1, id, title: `T ${id}`, truncated: false }));

describe("citations and sources", () => {
  test("each [n] maps to the document numbered n; unknown numbers are kept apart; order of first use", () => {
    const docs = rendered(["a", "b", "c"]);
    expect(mapCitations("Paris [2], see also [1][2] and [7].", docs)).toEqual({
      citations: [
        { n: 2, id: "b", title: "T b" },
        { n: 1, id: "a", title: "T a" },
      ],
      invalid: [7],
    });
    expect(mapCitations("no citation here, [x] is not one", docs)).toEqual({ citations: [], invalid: [] });
    expect(mapCitations("[0] [3]", docs).citations.map((c) => c.id)).toEqual(["c"]);
  });
  test("snippets cut at a word boundary; sources carry number, id, title, snippet", () => {
    expect(snippet("short  text\n here")).toBe("short text here");
    const long = "word ".repeat(100);
    const s = snippet(long, 50);
    expect(s.endsWith("…")).toBe(true);
    expect(s.length).toBeLessThanOrEqual(51);
    expect(s).not.toContain("wor…");
    expect(sourcesOf(rendered(["a"]), new Map([["a", "Alpha text"]]))).toEqual([{ n: 1, id: "a", title: "T a", snippet: "Alpha text" }]);
  });
  test("the text stream's pieces add up to the trimmed answer, holding back partial characters", () => {
    const tok = trainBpe(["héllo wörld ünïcode"], { vocabSize: 300 }).tokenizer;
    const ids = tok.encodeBytes(new TextEncoder().encode("  héllo wörld  "));
    const s = new TextStream((x) => tok.decode(x));
    const pieces = ids.map((id) => s.push(id));
    pieces.push(s.end());
    expect(pieces.join("")).toBe("héllo wörld");
    expect(pieces.every((p) => !p.includes("\uFFFD"))).toBe(true);
  });
});

/**
 * A scripted stand-in for the engine: whatever it is fed, its next logits pick the next token of a
 * script, so the runtime's handling of queries, documents, streaming and aborts is tested exactly.
 */
function scriptedModel(script: number[], V: number) {
  let fed = 0;
  const calls: number[][] = [];
  const state = {
    reset: () => (fed = 0),
    free: () => {},
    forward: (tokens: number[]) => {
      calls.push([...tokens]);
      const logits = new Float32Array(V);
      logits[script[Math.min(fed++, script.length - 1)]!] = 1;
      return logits;
    },
  };
  return { model: { config: { vocab_size: V, sequence_len: 1024 }, newState: () => state } as unknown as Model, calls, state };
}

describe("answering with a scripted model", () => {
  const tok: Tokenizer = trainBpe(["Paris is the capital of France. Lyon is a city."], { vocabSize: 300 }).tokenizer;
  const S = (n: string) => tok.specialId(`<|${n}|>`);
  const script = [S("query_start"), ...tok.encode("capital of France"), S("query_end"), ...tok.encode(" Paris [2]."), S("assistant_end")];
  const lyon: RagDoc = { id: "lyon", title: "Lyon", text: "Lyon is a city." };
  const paris: RagDoc = { id: "paris", title: "Paris", text: "Paris is the capital of France." };
  const searched: string[] = [];
  const retrieve = async (q: string) => {
    searched.push(q);
    return q === "capital of France" ? [lyon, paris] : [lyon];
  };
  const settings = { topK: 1, maxHops: 2, topKPerHop: 1, maxNewTokens: 40, maxLen: 512, readTwice: true };

  test("refrag: the model's query is searched and new documents are injected as [2]; the citation maps to them", async () => {
    const { model, calls } = scriptedModel(script, tok.vocabSize);
    const streamed: string[] = [];
    const a = await answerQuestion(model, tok, "What is the capital of France?", { ...settings, mode: "refrag", retrieve, onToken: (d) => streamed.push(d) });
    expect(a.queries).toEqual(["capital of France"]);
    expect(a.hops).toBe(1);
    expect(a.sources.map((s) => [s.n, s.id])).toEqual([[1, "lyon"], [2, "paris"]]);
    expect(a.citations).toEqual([{ n: 2, id: "paris", title: "Paris" }]);
    expect(a.invalid_citations).toEqual([]);
    expect(a.answer).toBe("Paris [2].");
    expect(streamed.join("")).toBe(a.answer);
    expect(a.finished).toBe(true);
    // the injected block was fed right after <|query_end|>, numbered [2]
    const injection = calls.find((c) => c[0] === S("query_end") && c.length > 1)!;
    expect(tok.decode(injection.slice(2, -1))).toBe("[2] Paris\nParis is the capital of France.");
  });

  test("refrag near the context limit: the hop's document is cut to fit (as render() trims), not skipped", async () => {
    const { model, calls } = scriptedModel(script, tok.vocabSize);
    const long: RagDoc = { ...paris, text: "Paris is the capital of France. ".repeat(30) };
    const a = await answerQuestion(model, tok, "What is the capital of France?", { ...settings, maxLen: 160, mode: "refrag", retrieve: async (q) => (q === "capital of France" ? [long, lyon] : [lyon]) });
    expect(a.docs.map((d) => [d.id, d.truncated])).toEqual([["lyon", false], ["paris", true]]);
    expect(a.citations.map((c) => c.id)).toEqual(["paris"]);
    expect(a.finished).toBe(true);
    const fed = calls.reduce((n, c) => n + c.length, 0);
    expect(fed).toBeLessThanOrEqual(160);
  });

  test("rag: the same query gets no documents, so [2] names nothing", async () => {
    const { model } = scriptedModel(script, tok.vocabSize);
    const a = await answerQuestion(model, tok, "What is the capital of France?", { ...settings, mode: "rag", retrieve });
    expect(a.hops).toBe(1);
    expect(a.sources.map((s) => s.id)).toEqual(["lyon"]);
    expect(a.invalid_citations).toEqual([2]);
  });

  test("none: closed-book, nothing retrieved", async () => {
    const { model } = scriptedModel(script, tok.vocabSize);
    searched.length = 0;
    const a = await answerQuestion(model, tok, "What is the capital of France?", { ...settings, mode: "none", retrieve });
    expect(searched).toEqual([]);
    expect(a.sources).toEqual([]);
  });

  test("an aborted signal stops generation between tokens and rejects with its reason", async () => {
    const { model, calls } = scriptedModel(script, tok.vocabSize);
    const ac = new AbortController();
    let pieces = 0;
    const run = answerQuestion(model, tok, "Capital?", { ...settings, mode: "refrag", retrieve, signal: ac.signal, onToken: () => ++pieces === 1 && ac.abort(new Error("client went away")) });
    await expect(run).rejects.toThrow("client went away");
    const fedAfterAbort = calls.length;
    await Bun.sleep(5);
    expect(calls.length).toBe(fedAfterAbort);
    expect(pieces).toBe(1);
  });
});

describe("Answerer on a tiny trained model", () => {
  let f: AnswerFixture;
  let a: Answerer;
  beforeAll(async () => {
    f = answerFixture();
    a = await Answerer.open({ model: f.refrag, kb: f.kb });
  });
  afterAll(() => a?.close());

  test("a run folder resolves to its final checkpoint; defaults come from the training config", () => {
    expect(checkpointDir(f.refrag)).toEndWith("rl/checkpoints/final");
    expect(checkpointDir(f.rag)).toEndWith("rag/checkpoints/final");
    expect(a.settings).toMatchObject({ retriever: "bm25", topK: 3, maxNewTokens: 12, maxLen: 1016 }); // 2 x 512 trained, within the model's 1024 positions
    expect(() => checkpointDir(f.kb)).toThrow(/not a checkpoint/);
  });

  test("answers stream, map sources to KB documents, report timings, and repeat exactly (state reused)", async () => {
    const q = "Who founded Felmor Corporation?";
    let streamed = "";
    let shown: string[] = [];
    const r1 = await a.answer(q, { onToken: (d) => (streamed += d), onSources: (s) => (shown = s.map((x) => x.id)) });
    expect(streamed).toBe(r1.answer);
    expect(r1.sources.length).toBeGreaterThan(0);
    expect(shown).toEqual(r1.sources.map((s) => s.id));
    // the best-ranked documents that fit the context
    const hit = await a.retrieve(q, { topK: 3 });
    expect(hit).toHaveLength(3);
    expect(r1.sources.map((s) => s.id)).toEqual(hit.slice(0, r1.sources.length).map((d) => d.id));
    expect(r1.timings.tokens).toBeGreaterThan(0);
    expect(r1.timings.ttft_ms).toBeGreaterThan(0);
    expect(r1.timings.ttft_ms).toBeGreaterThanOrEqual(r1.timings.prefill_ms);
    const r2 = await a.answer(q);
    expect(r2.answer).toBe(r1.answer);
    expect((await a.answer(q, { mode: "none" })).sources).toEqual([]);
    expect((await a.answer(q, { topK: 1 })).sources.length).toBe(1);
  });

  test("overlapping calls queue; an aborted one frees the model for the next", async () => {
    const ac = new AbortController();
    const first = a.answer("Where is Felmor Corporation?", { signal: ac.signal, onToken: () => ac.abort(new Error("gone")) });
    const second = a.answer("Where is Felmor Corporation?");
    await expect(first).rejects.toThrow("gone");
    const r = await second;
    expect(r.timings.tokens).toBeGreaterThan(0);
    const pre = new AbortController();
    pre.abort(new Error("never started"));
    await expect(a.answer("x", { signal: pre.signal })).rejects.toThrow("never started");
  });

  test("bad options are refused with a clear message", async () => {
    await expect(a.answer("   ")).rejects.toThrow(/empty/);
    await expect(a.answer("q", { topK: 0 })).rejects.toThrow(/topK must be an integer >= 1/);
    await expect(a.answer("q", { maxNewTokens: 10_000 })).rejects.toThrow(/maxNewTokens must be at most 508/);
    await expect(a.answer("q", { retriever: "nope" })).rejects.toThrow(/Unknown retriever "nope"/);
    expect(() => a.checkRetriever("dense")).toThrow(/keeps no "dense" index/);
  });

  test("embeddings: unit vectors of the model's width, deterministic, different for different texts", async () => {
    const e = await a.embed(["Felmor Corporation is a business.", "Felmor Corporation is a business.", "1912"]);
    expect(e.vectors).toHaveLength(3);
    expect(e.tokens).toBeGreaterThan(3);
    const [x, y, z] = e.vectors as [Float32Array, Float32Array, Float32Array];
    expect(x.length).toBe(32);
    expect(Math.hypot(...x)).toBeCloseTo(1, 5);
    expect([...x]).toEqual([...y]);
    expect([...x]).not.toEqual([...z]);
  });
});
