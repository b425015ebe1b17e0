import { afterEach, describe, expect, test } from "bun:test";
import dense from "../plugins/dense.ts";
import { requestEmbedder, storedIdentity, stats } from "../src/dense/index.ts";
import { randomizedSvd, symmetricEigen, rng, type Csr } from "../src/dense/linalg.ts";
import { fitLsa, lsaFactory } from "../src/dense/lsa.ts";
import { VectorStore } from "../src/dense/store.ts";
import { TestKb, type TestDoc } from "../src/dense/testkit.ts";
import { UserError } from "../src/errors.ts";

const DOCS: TestDoc[] = [
  { id: "c1", title: "Cats", content: "cats are small feline pets that purr and chase mice", source: "pets" },
  { id: "c2", title: "Kittens", content: "a kitten is a young cat; kittens purr, play and chase toys", source: "pets" },
  { id: "c3", title: "Lions", content: "lions are large feline predators living in prides on the savanna", source: "wild" },
  { id: "d1", title: "Dogs", content: "dogs are loyal pets that bark, fetch and guard the house", source: "pets" },
  { id: "d2", title: "Puppies", content: "a puppy is a young dog; puppies bark, fetch sticks and chew shoes", source: "pets" },
  { id: "d3", title: "Wolves", content: "wolves are wild canines that howl and hunt in packs", source: "wild" },
  { id: "p1", title: "Python", content: "python is a programming language with dynamic typing and garbage collection", source: "code" },
  { id: "p2", title: "Rust", content: "rust is a systems programming language with ownership and no garbage collection", source: "code" },
  { id: "p3", title: "Compilers", content: "a compiler translates a programming language into machine code", source: "code" },
];

let kb: TestKb | undefined;
afterEach(() => {
  kb?.close();
  kb = undefined;
  requestEmbedder(null);
});

async function lsaKb(spec = "lsa:dim=8") {
  requestEmbedder(spec);
  kb = new TestKb(":memory:", [dense]);
  await kb.add(DOCS);
  requestEmbedder(null);
  return kb;
}

describe("randomized SVD", () => {
  test("matches the exact singular values of a small sparse matrix", () => {
    const r = rng(7);
    const n = 40, m = 30;
    const dense2d = Array.from({ length: n }, () => Array.from({ length: m }, () => (r() < 0.3 ? r() : 0)));
    const ptr = new Int32Array(n + 1);
    const idx: number[] = [];
    const vals: number[] = [];
    dense2d.forEach((row, i) => {
      row.forEach((v, j) => {
        if (v) {
          idx.push(j);
          vals.push(v);
        }
      });
      ptr[i + 1] = idx.length;
    });
    const x: Csr = { rows: n, cols: m, ptr, idx: Int32Array.from(idx), vals: Float64Array.from(vals) };
    // Exact: eigenvalues of X^T X.
    const g = new Float64Array(m * m);
    for (let a = 0; a < m; a++) for (let b = 0; b < m; b++) for (let i = 0; i < n; i++) g[a * m + b] += dense2d[i]![a]! * dense2d[i]![b]!;
    const exact = symmetricEigen(g, m).values;
    // More power iterations converge to the exact values; the default (2) is close on a flat spectrum.
    const tight = randomizedSvd(x, 5, { oversample: 10, powerIters: 8, seed: 1 });
    for (let t = 0; t < 5; t++) expect(Math.abs(tight.sigma[t]! - Math.sqrt(exact[t]!)) / Math.sqrt(exact[t]!)).toBeLessThan(1e-7);
    const svd = randomizedSvd(x, 5, { oversample: 10, powerIters: 2, seed: 1 });
    for (let t = 0; t < 5; t++) expect(Math.abs(svd.sigma[t]! - Math.sqrt(exact[t]!)) / Math.sqrt(exact[t]!)).toBeLessThan(1e-3);
    // V's columns are orthonormal.
    for (let a = 0; a < 5; a++) {
      for (let b = 0; b < 5; b++) {
        let s = 0;
        for (let j = 0; j < m; j++) s += svd.v[j * 5 + a]! * svd.v[j * 5 + b]!;
        expect(s).toBeCloseTo(a === b ? 1 : 0, 6);
      }
    }
  });

  test("symmetric eigen-decomposition reconstructs A v = lambda v", () => {
    const l = 12;
    const r = rng(3);
    const a = new Float64Array(l * l);
    for (let i = 0; i < l; i++) for (let j = i; j < l; j++) a[i * l + j] = a[j * l + i] = r() - 0.5;
    const { values, vectors } = symmetricEigen(a, l);
    for (let t = 0; t < l; t++) {
      if (t > 0) expect(values[t]!).toBeLessThanOrEqual(values[t - 1]!);
      for (let i = 0; i < l; i++) {
        let s = 0;
        for (let k = 0; k < l; k++) s += a[i * l + k]! * vectors[k * l + t]!;
        expect(s).toBeCloseTo(values[t]! * vectors[i * l + t]!, 10);
      }
    }
  });
});

describe("lsa embedder", () => {
  test("is deterministic, unit length, and folding in a fitted text gives its fitted vector", () => {
    const texts = DOCS.map((d) => `${d.title}\n${d.content}`);
    const a = fitLsa(texts, { dim: 8, min_df: 1, max_terms: 1000, fit_sample: 1000, seed: 42, power_iters: 2, oversample: 10 });
    const b = fitLsa(texts, { dim: 8, min_df: 1, max_terms: 1000, fit_sample: 1000, seed: 42, power_iters: 2, oversample: 10 });
    const va = a.model.embedOne(texts[0]!);
    expect([...va]).toEqual([...b.model.embedOne(texts[0]!)]);
    expect(Math.hypot(...va)).toBeCloseTo(1, 5);
    expect(a.stats.rank).toBe(8);
    // The build's vectors (from the fit's own TF-IDF rows) equal the fold-in of the same texts.
    texts.forEach((t, i) => expect([...a.model.fitted![i]!]).toEqual([...a.model.embedOne(t)]));
    // Unknown words only: the zero vector.
    expect([...a.model.embedOne("qqqq xxxx")].every((x) => x === 0)).toBe(true);
  });
});

describe("dense plugin over a KB", () => {
  test("build records the embedder identity and stores one vector per chunk", async () => {
    const k = await lsaKb();
    const id = storedIdentity(k.ctx)!;
    expect(id.name).toBe("lsa");
    expect(id.dim).toBe(8);
    expect(id.settings.analyzer).toBe("porter-v1");
    expect(new VectorStore(k.db, 8).count()).toBe(DOCS.length);
    expect(await dense.doctor!(k.ctx)).toEqual([]);
    // A chunk with no term the fit knows gets no vector (it would otherwise sit at cosine 0.5 from everything).
    await k.add([{ id: "e1", content: "zzzz qqqq" }]);
    expect(new VectorStore(k.db, 8).count()).toBe(DOCS.length);
    expect(await dense.doctor!(k.ctx)).toEqual([]);
    expect(stats(k.ctx)).toMatchObject({ vectors: DOCS.length, folded: 1 });
  });

  test("finds topical documents, best first, with cosine scores", async () => {
    const k = await lsaKb();
    const hits = await dense.search(k.ctx, "feline pets that purr", { topK: 3 });
    expect(hits.length).toBe(3);
    expect(hits[0]!.docId).toMatch(/^c/);
    for (let i = 1; i < hits.length; i++) expect(hits[i - 1]!.score).toBeGreaterThanOrEqual(hits[i]!.score);
    for (const h of hits) expect(h.score).toBeLessThanOrEqual(1 + 1e-6);
    expect(await dense.search(k.ctx, "qqqq", { topK: 3 })).toEqual([]);
  });

  test("a query with another embedder than the KB's is refused clearly", async () => {
    const k = await lsaKb();
    const err = await Promise.resolve(dense.search(k.ctx, "cats", { topK: 3, options: { embedder: "http:model=bge-small" } })).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain("embedder mismatch");
    expect(err.message).toContain("lsa (dim 8");
    const err2 = await Promise.resolve(dense.search(k.ctx, "cats", { topK: 3, options: { embedder: "lsa:dim=16" } })).catch((e) => e);
    expect(err2.message).toContain("dim 16 != 8");
    // The same embedder is fine.
    expect((await dense.search(k.ctx, "cats", { topK: 1, options: { embedder: "lsa:dim=8" } })).length).toBe(1);
    // Adding documents with another embedder requested is refused and rolls back.
    requestEmbedder("lsa:dim=16");
    const before = k.count("chunks");
    await expect(k.add([{ id: "n1", content: "cats" }])).rejects.toThrow("embedder mismatch");
    requestEmbedder(null);
    expect(k.count("chunks")).toBe(before);
  });

  test("unknown embedders and malformed specs are refused", () => {
    expect(() => requestEmbedder("nope")).toThrow('unknown embedder "nope"');
    expect(() => requestEmbedder("lsa:dim")).toThrow("key=value");
  });

  test("new documents are folded in with the stored projection; removal drops their vectors", async () => {
    const k = await lsaKb();
    const model = await lsaFactory.load(storedIdentity(k.ctx)!, k.ctx);
    const [added] = await k.add([{ id: "c4", title: "Tabby", content: "a tabby cat is a feline pet that purrs" }]);
    const stored = new VectorStore(k.db, 8).vector(added!.id)!;
    const expected = (await model.embed([`Tabby\n${added!.text}`], "document"))[0]!;
    for (let i = 0; i < 8; i++) expect(stored[i]!).toBeCloseTo(expected[i]!, 6);
    expect(k.ctx.getMeta("dense.folded")).toBe("1");
    // "tabby" is not in the fitted vocabulary; the rest of the text places it among the cats.
    expect(await dense.search(k.ctx, "tabby", { topK: 1 })).toEqual([]);
    const hits = await dense.search(k.ctx, "feline pet that purrs", { topK: 4 });
    expect(hits.map((h) => h.docId)).toContain("c4");
    await k.remove(["c4"]);
    expect(new VectorStore(k.db, 8).vector(added!.id)).toBeNull();
    expect(await dense.doctor!(k.ctx)).toEqual([]);
  });

  test("reindex refits the projection and rebuilds every vector", async () => {
    const k = await lsaKb();
    await k.add([{ id: "c4", title: "Tabby", content: "a tabby cat is a feline pet that purrs" }]);
    const fitBefore = k.ctx.getMeta("dense.fit_id");
    await k.reindex();
    expect(k.ctx.getMeta("dense.fit_id")).not.toBe(fitBefore);
    expect(k.ctx.getMeta("dense.folded")).toBe("0");
    expect(JSON.parse(k.ctx.getMeta("dense.lsa.fit")!).fitted_on).toBe(DOCS.length + 1);
    expect(storedIdentity(k.ctx)!.dim).toBe(8); // same settings as the original build
    expect(new VectorStore(k.db, 8).count()).toBe(DOCS.length + 1);
    expect(await dense.doctor!(k.ctx)).toEqual([]);
    // reindex with another embedder requested switches to it.
    requestEmbedder("lsa:dim=16");
    await k.reindex();
    expect(storedIdentity(k.ctx)!.dim).toBe(16);
    expect((await dense.search(k.ctx, "puppy", { topK: 1 }))[0]!.docId).toMatch(/^d/);
  });

  test("doctor reports vectors missing for chunks", async () => {
    const k = await lsaKb();
    new VectorStore(k.db, 8).delete([1]);
    const problems = await dense.doctor!(k.ctx);
    expect(problems.join("\n")).toContain("1 chunk(s) have no vector");
    expect(problems.join("\n")).not.toContain("quantised");
  });

  test("filters give the exact top-k among the allowed chunks, in both modes", async () => {
    const k = await lsaKb();
    const all = await dense.search(k.ctx, "young pets", { topK: 20 });
    const allowed = k.ctx.filterChunkIds({ source: "wild" })!;
    const expected = all.filter((h) => allowed.has(h.chunkId)).slice(0, 2);
    const got = await dense.search(k.ctx, "young pets", { topK: 2, filter: { source: "wild" } });
    expect(got.map((h) => h.docId)).toEqual(expected.map((h) => h.docId));
    const gotQ = await dense.search(k.ctx, "young pets", { topK: 2, filter: { source: "wild" }, options: { mode: "quantized", oversample: "4" } });
    expect(gotQ.map((h) => h.docId)).toEqual(expected.map((h) => h.docId));
    expect(await dense.search(k.ctx, "young pets", { topK: 2, filter: { source: "nowhere" } })).toEqual([]);
  });

  test("quantized mode with enough oversampling equals exact; bad options are refused", async () => {
    const k = await lsaKb();
    const exact = await dense.search(k.ctx, "programming language", { topK: 3 });
    const quant = await dense.search(k.ctx, "programming language", { topK: 3, options: { mode: "quantized", oversample: "10" } });
    expect(quant.map((h) => [h.chunkId, h.score.toFixed(5)])).toEqual(exact.map((h) => [h.chunkId, h.score.toFixed(5)]));
    await expect(Promise.resolve(dense.search(k.ctx, "x", { topK: 3, options: { mode: "fast" } }))).rejects.toThrow("mode=fast");
    await expect(Promise.resolve(dense.search(k.ctx, "x", { topK: 3, options: { oversample: "0" } }))).rejects.toThrow("oversample");
  });

  test("a KB without dense vectors says how to get them", async () => {
    kb = new TestKb(":memory:", []);
    await kb.add(DOCS.slice(0, 2));
    await expect(Promise.resolve(dense.search(kb.ctx, "cats", { topK: 3 }))).rejects.toThrow("has no dense vectors");
  });
});

describe("vector store", () => {
  test("exact KNN, small and large filters and quantised re-scoring agree with a brute-force scan", () => {
    const db = new TestKb(":memory:").db;
    const dim = 16;
    const r = rng(11);
    const vecs = new Map<number, Float32Array>();
    for (let id = 1; id <= 400; id++) {
      const v = Float32Array.from({ length: dim }, () => r() - 0.5);
      const n = Math.hypot(...v);
      vecs.set(id, v.map((x) => x / n));
    }
    const store = new VectorStore(db, dim);
    store.create();
    store.insert([...vecs.keys()], [...vecs.values()]);
    expect(store.count()).toBe(400);
    expect(store.count("dense_sign")).toBe(400);
    const q = vecs.get(7)!.map((x, i) => x + (i % 3 === 0 ? 0.1 : -0.05));
    const brute = (allowed?: Set<number>) =>
      [...vecs]
        .filter(([id]) => !allowed || allowed.has(id))
        .map(([id, v]) => ({ id, score: v.reduce((s, x, i) => s + x * q[i]!, 0) / Math.hypot(...q) }))
        .sort((a, b) => b.score - a.score || a.id - b.id);
    const qn = q.map((x) => x / Math.hypot(...q));
    const ids = (xs: { id: number }[]) => xs.map((x) => x.id);
    expect(ids(store.exact(qn, 10))).toEqual(ids(brute().slice(0, 10)));
    for (const [i, n] of store.exact(qn, 10).entries()) expect(n.score).toBeCloseTo(brute()[i]!.score, 5);
    const small = new Set([3, 50, 99, 200, 301]);
    expect(ids(store.exact(qn, 3, small))).toEqual(ids(brute(small).slice(0, 3)));
    const large = new Set([...vecs.keys()].filter((id) => id % 2 === 0));
    expect(ids(store.exact(qn, 10, large))).toEqual(ids(brute(large).slice(0, 10)));
    // With every row a candidate, the quantised path is exact.
    expect(ids(store.quantized(qn, 10, 40))).toEqual(ids(brute().slice(0, 10)));
    expect(ids(store.quantized(qn, 3, 400, small))).toEqual(ids(brute(small).slice(0, 3)));
    store.delete([7]);
    expect(store.count()).toBe(399);
    expect(store.count("dense_sign")).toBe(399);
    expect(store.exact(qn, 10).some((n) => n.id === 7)).toBe(false);
    db.close();
  });
});
