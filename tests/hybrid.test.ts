import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import hybrid, { hybridCc, hybridConfig, hybridRrf } from "../plugins/hybrid.ts";
import { definePlugin, type Hit } from "../src/plugin-api.ts";
import { TestKb } from "../src/dense/testkit.ts";
import { UserError } from "../src/errors.ts";

// Two fixed component retrievers over a KB of 5 chunks, so fused results can be checked by hand.
const lists: Record<string, [number, number][]> = {
  lex: [
    [1, 12],
    [2, 8],
    [3, 4],
  ],
  vec: [
    [3, 0.9],
    [4, 0.8],
    [1, 0.5],
  ],
};
const fixed = (name: string) =>
  definePlugin({
    name,
    search(ctx, _q, opts) {
      const allowed = ctx.filterChunkIds(opts.filter);
      const chunks = new Map(ctx.chunksById(lists[name]!.map(([id]) => id)).map((c) => [c.id, c]));
      return lists[name]!
        .filter(([id]) => !allowed || allowed.has(id))
        .slice(0, opts.topK)
        .map(([id, score]) => ({ chunkId: id, docId: chunks.get(id)!.docId, score, title: chunks.get(id)!.title, text: chunks.get(id)!.text }));
    },
  });

let kb: TestKb;
let server: Server<unknown>;
const rerankRequests: unknown[] = [];

beforeAll(async () => {
  kb = new TestKb(":memory:", []);
  kb.register(fixed("lex")).register(fixed("vec")).register(hybrid);
  await kb.add([
    { id: "a", content: "alpha", source: "x" },
    { id: "b", content: "beta", source: "y" },
    { id: "c", content: "gamma", source: "x" },
    { id: "d", content: "delta", source: "y" },
    { id: "e", content: "epsilon", source: "x" },
  ]);
  // A cross-encoder stand-in: scores a text by how many times it contains the query's letters... and
  // answers in TEI shape at /rerank and in Cohere shape at /v1/rerank.
  server = Bun.serve({
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const body = (await req.json()) as { query: string; texts?: string[]; documents?: string[] };
      rerankRequests.push({ path: url.pathname, body, auth: req.headers.get("authorization") });
      const texts = body.texts ?? body.documents ?? [];
      const score = (t: string) => (t === body.query ? 0.99 : 1 / (1 + t.length));
      if (url.pathname === "/fail/rerank") return new Response("boom", { status: 400 });
      if (url.pathname === "/v1/rerank") return Response.json({ results: texts.map((t, index) => ({ index, relevance_score: score(t) })).reverse() });
      return Response.json(texts.map((t, index) => ({ index, score: score(t) })));
    },
  });
});
afterAll(() => {
  server.stop(true);
  kb.close();
});

const ids = (hits: Hit[]) => hits.map((h) => h.chunkId);

describe("hybrid retriever", () => {
  test("rrf by default, with each component's rank and raw score in explain", async () => {
    const hits = await hybrid.search(kb.ctx, "q", { topK: 10, options: { components: "lex,vec" } });
    expect(ids(hits)).toEqual([1, 3, 2, 4]);
    expect(hits[0]!.score).toBeCloseTo(1 / 61 + 1 / 63, 12);
    expect(hits[0]!.explain).toEqual({ lex: { rank: 1, score: 12 }, vec: { rank: 3, score: 0.5 } });
    expect(hits[3]!.explain).toEqual({ vec: { rank: 2, score: 0.8 } });
  });

  test("cc with a weight, and the hybrid-rrf / hybrid-cc variants", async () => {
    const cc = await hybrid.search(kb.ctx, "q", { topK: 10, options: { components: "lex+vec", method: "cc", weight: "0.7" } });
    expect(cc.map((h) => [h.chunkId, Number(h.score.toFixed(6))])).toEqual([
      [1, 0.7],
      [2, 0.35],
      [3, 0.3],
      [4, 0.225],
    ]);
    kb.register(hybridCc).register(hybridRrf);
    const v = await hybridCc.search(kb.ctx, "q", { topK: 10, options: { components: "lex,vec", weight: "0.7" } });
    expect(v.map((h) => h.score)).toEqual(cc.map((h) => h.score));
    expect(ids(await hybridRrf.search(kb.ctx, "q", { topK: 2, options: { components: "lex,vec" } }))).toEqual([1, 3]);
  });

  test("filters reach every component", async () => {
    const hits = await hybrid.search(kb.ctx, "q", { topK: 10, filter: { source: "x" }, options: { components: "lex,vec" } });
    expect(ids(hits)).toEqual([1, 3]);
    for (const h of hits) expect(kb.ctx.filterChunkIds({ source: "x" })!.has(h.chunkId)).toBe(true);
  });

  test("bad options are refused clearly", () => {
    expect(() => hybridConfig({ topK: 5, options: { components: "lex" } })).toThrow(UserError);
    expect(() => hybridConfig({ topK: 5, options: { components: "lex,hybrid" } })).toThrow("cannot fuse itself");
    expect(() => hybridConfig({ topK: 5, options: { method: "avg" } })).toThrow("method=avg is not one of rrf, cc");
    expect(() => hybridConfig({ topK: 5, options: { weight: "2" } })).toThrow("weight=2");
    expect(() => hybridConfig({ topK: 5, options: { components: "a,b,c", weight: "0.5" } })).toThrow("weights=a,b,c");
    expect(() => hybridConfig({ topK: 5, options: { weights: "1,2,3" } })).toThrow("needs 2");
    expect(hybridConfig({ topK: 150 }).depth).toBe(300);
  });
});

describe("rerank stage (HTTP, TEI and Cohere shapes)", () => {
  test("TEI shape: reorders the fused candidates and explains fusion and rerank ranks", async () => {
    rerankRequests.length = 0;
    const url = `http://localhost:${server.port}`;
    const hits = await hybrid.search(kb.ctx, "gamma", { topK: 3, options: { components: "lex,vec", rerank_url: url } });
    // Texts: alpha(1) gamma(3) beta(2) delta(4): "gamma" equals the query -> first; then shorter texts.
    expect(ids(hits)).toEqual([3, 2, 1]);
    expect(hits[0]!.score).toBe(0.99);
    expect(hits[0]!.explain!.rerank).toEqual({ rank: 1, score: 0.99 });
    expect(hits[0]!.explain!.fusion!.rank).toBe(2);
    expect(hits[0]!.explain!.lex).toEqual({ rank: 3, score: 4 });
    expect(rerankRequests).toHaveLength(1);
    expect((rerankRequests[0] as { path: string }).path).toBe("/rerank");
    expect((rerankRequests[0] as { body: { texts: string[] } }).body.texts).toEqual(["alpha", "gamma", "beta", "delta"]);
  });

  test("Cohere shape, with the API key from the named environment variable", async () => {
    rerankRequests.length = 0;
    process.env.TEST_RERANK_KEY = "sekret";
    const hits = await hybrid.search(kb.ctx, "gamma", {
      topK: 2,
      options: { components: "lex,vec", rerank_url: `http://localhost:${server.port}/v1/rerank`, rerank_api: "cohere", rerank_model: "rr", rerank_api_key_env: "TEST_RERANK_KEY" },
    });
    expect(ids(hits)).toEqual([3, 2]);
    const req = rerankRequests[0] as { body: { documents: string[]; model: string; top_n: number }; auth: string };
    expect(req.body.documents).toHaveLength(4);
    expect(req.body.model).toBe("rr");
    expect(req.auth).toBe("Bearer sekret");
  });

  test("an endpoint error or an unreachable endpoint is a clear UserError", async () => {
    const bad = hybrid.search(kb.ctx, "q", { topK: 2, options: { components: "lex,vec", rerank_url: `http://localhost:${server.port}/fail` } });
    await expect(Promise.resolve(bad)).rejects.toThrow("answered HTTP 400");
    const down = hybrid.search(kb.ctx, "q", { topK: 2, options: { components: "lex,vec", rerank_url: "http://127.0.0.1:1", rerank_retries: "0" } });
    await expect(Promise.resolve(down)).rejects.toThrow("reranker: cannot reach http://127.0.0.1:1/rerank");
  });
});
