/**
 * Lexical retrieval benchmark: index throughput (chunks/s) and query latency p50/p99 for `bm25` and
 * `simple`, side by side with MiniSearch (BM25+) on the same corpus and queries, with quality.
 *   - NFCorpus (3.6k chunks, from ../shared/data/nfcorpus.zip): real queries and judgments.
 *   - A synthetic 100k-chunk corpus drawn from NFCorpus's own word distribution (latency at scale).
 * Usage: bun bench/retrieval.bench.ts [--sizes 3.6k,100k]
 */
import MiniSearch from "minisearch";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ndcgAt, recallAt } from "../src/eval/metrics.ts";
import { loadQueries } from "../src/eval/retrieval.ts";
import { Kb } from "../src/kb/kb.ts";
import { type DocRecord, readDocuments } from "../src/kb/readers.ts";
import { analyzeEnglish } from "../src/retrieval/analyzer.ts";

const zip = join(import.meta.dir, "../../shared/data/nfcorpus.zip");
if (!existsSync(zip)) {
  console.error(`missing ${zip}`);
  process.exit(1);
}
const work = mkdtempSync(join(tmpdir(), "nanorag-bench-"));
Bun.spawnSync(["unzip", "-q", zip, "-d", work]);
const base = join(work, "nfcorpus");
const corpus = readDocuments(join(base, "corpus.jsonl")).docs;
const evalSet = loadQueries(join(base, "queries.jsonl"), join(base, "qrels/test.tsv"));

/** Documents of ~`words` words drawn from the corpus's unigram distribution, so term statistics stay realistic. */
function synthesize(n: number, words: number, seed: number): DocRecord[] {
  const bag = corpus.flatMap((d) => `${d.title} ${d.content}`.split(/\s+/).filter(Boolean));
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
  return Array.from({ length: n }, (_, i) => {
    const body = Array.from({ length: words }, () => bag[Math.floor(rand() * bag.length)]).join(" ");
    return { id: `syn-${i}`, title: "", content: body, source: "synthetic", metadata: {} };
  });
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const fmt = (x: number) => x.toFixed(2);

interface Row {
  corpus: string;
  engine: string;
  chunks: number;
  buildS: number;
  chunksPerS: number;
  p50: number;
  p99: number;
  ndcg10?: number;
  r100?: number;
}

async function runCorpus(label: string, docs: DocRecord[], withQuality: boolean): Promise<Row[]> {
  const rows: Row[] = [];
  const queries = evalSet.queries;
  for (const engine of ["bm25", "simple"]) {
    const path = join(work, `${label}-${engine}.db`);
    const t0 = performance.now();
    const { kb } = await Kb.build(path, docs, { retrievers: [engine] });
    const buildS = (performance.now() - t0) / 1000;
    const chunks = kb.count("chunks");
    for (const q of queries.slice(0, 20)) await kb.search(engine, q.text, { topK: 10 }); // warm-up
    const lat: number[] = [];
    let ndcg = 0;
    let r100 = 0;
    for (const q of queries) {
      const t = performance.now();
      const hits = await kb.search(engine, q.text, { topK: 10 });
      lat.push(performance.now() - t);
      if (withQuality) {
        const ranked = (await kb.search(engine, q.text, { topK: 100, group: "doc" })).map((h) => h.docId);
        ndcg += ndcgAt(hits.map((h) => h.docId), q.relevant, 10);
        r100 += recallAt(ranked, q.relevant, 100);
      }
    }
    kb.close();
    rows.push({ corpus: label, engine: `nanorag ${engine}`, chunks, buildS, chunksPerS: chunks / buildS, p50: pct(lat, 50), p99: pct(lat, 99), ...(withQuality ? { ndcg10: ndcg / queries.length, r100: r100 / queries.length } : {}) });
  }
  // Peer: MiniSearch (BM25+), given the same analyzer so the comparison is about the engine.
  const t0 = performance.now();
  const ms = new MiniSearch<{ id: string; text: string }>({ fields: ["text"], storeFields: [], tokenize: (t) => analyzeEnglish(t), processTerm: (t) => t });
  ms.addAll(docs.map((d) => ({ id: d.id, text: `${d.title} ${d.content}` })));
  const buildS = (performance.now() - t0) / 1000;
  for (const q of queries.slice(0, 20)) ms.search(q.text);
  const lat: number[] = [];
  let ndcg = 0;
  let r100 = 0;
  for (const q of queries) {
    const t = performance.now();
    const res = ms.search(q.text).slice(0, 10);
    lat.push(performance.now() - t);
    if (withQuality) {
      const ranked = ms.search(q.text).slice(0, 100).map((r) => String(r.id));
      ndcg += ndcgAt(res.map((r) => String(r.id)), q.relevant, 10);
      r100 += recallAt(ranked, q.relevant, 100);
    }
  }
  rows.push({ corpus: label, engine: "MiniSearch 7 (BM25+)", chunks: docs.length, buildS, chunksPerS: docs.length / buildS, p50: pct(lat, 50), p99: pct(lat, 99), ...(withQuality ? { ndcg10: ndcg / queries.length, r100: r100 / queries.length } : {}) });
  return rows;
}

const sizes = (process.argv.find((a) => a.startsWith("--sizes="))?.slice(8) ?? "3.6k,100k").split(",");
const all: Row[] = [];
if (sizes.includes("3.6k")) all.push(...(await runCorpus("NFCorpus 3.6k", corpus, true)));
if (sizes.includes("100k")) all.push(...(await runCorpus("synthetic 100k", synthesize(100_000, 120, 7), false)));
rmSync(work, { recursive: true, force: true });

console.log("| corpus | engine | chunks | build s | chunks/s | p50 ms | p99 ms | nDCG@10 | R@100 |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const r of all) {
  console.log(`| ${r.corpus} | ${r.engine} | ${r.chunks} | ${fmt(r.buildS)} | ${Math.round(r.chunksPerS)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${r.ndcg10?.toFixed(4) ?? "-"} | ${r.r100?.toFixed(4) ?? "-"} |`);
}
