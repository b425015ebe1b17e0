/**
 * Vector search benchmark for the dense retriever's storage (src/dense/store.ts, sqlite-vec vec0
 * tables in a KB file): build time, exact float KNN (vectors loaded once into memory, scanned by the
 * native kernel; the load timed apart) and binary-quantised prefilter + float re-score latency
 * (p50/p99), recall@10 of quantised vs exact, file size and peak memory, at 100k and 1M synthetic
 * 384-d unit vectors; side by side, in the same process on the same vectors and queries, with
 * sqlite-vec's own vec0 KNN scan (what exact search used before) and a plain Float32Array brute force.
 *
 * Synthetic data: 2,000 Gaussian cluster centres; each vector is a centre plus noise (cosine to its
 * centre about 0.8), L2-normalised; each query is a stored vector plus fresh noise, so nearest
 * neighbours are meaningful (on isotropic random vectors every neighbour is noise and no
 * quantisation keeps its ranking). Every vector is regenerated from its index, so nothing but
 * SQLite holds the corpus while building (peak memory is the store's, then the peer's).
 *
 * Usage: bun bench/vector.bench.ts [--sizes 100000,1000000] [--queries 100] [--oversample 4,10,20,40]
 * Each size runs in its own process so its peak RSS is its own.
 */
import { Database } from "bun:sqlite";
import { readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as sqliteVec from "sqlite-vec";
import { gaussian, rng } from "../src/dense/linalg.ts";
import { type Neighbor, VectorStore } from "../src/dense/store.ts";

const DIM = 384;
const CENTRES = 2000;
const NOISE = 0.5; // per-dimension noise on unit-variance centres: cos(vector, centre) ~ 0.89, cos between cluster mates ~ 0.8
const QUERY_NOISE = 0.5; // noise of norm 0.5 on a unit vector: cos(query, its source) ~ 0.89
const K = 10;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
}

function rssPeakMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

const centres = (() => {
  const g = gaussian(rng(1234));
  const c = new Float32Array(CENTRES * DIM);
  for (let i = 0; i < c.length; i++) c[i] = g();
  return c;
})();

/** Vector `i` of the corpus, always the same. */
function vectorAt(i: number, out = new Float32Array(DIM)): Float32Array {
  const r = rng(0x9e3779b9 ^ (i * 2654435761));
  const g = gaussian(r);
  const c = Math.floor(r() * CENTRES) * DIM;
  let s = 0;
  for (let d = 0; d < DIM; d++) {
    const v = centres[c + d]! + NOISE * g();
    out[d] = v;
    s += v * v;
  }
  const inv = 1 / Math.sqrt(s);
  for (let d = 0; d < DIM; d++) out[d]! *= inv;
  return out;
}

function queryAt(q: number, n: number): Float32Array {
  const r = rng(777 + q);
  const g = gaussian(r);
  const v = vectorAt(Math.floor(r() * n));
  let s = 0;
  for (let d = 0; d < DIM; d++) {
    v[d] = v[d]! + (QUERY_NOISE / Math.sqrt(DIM)) * g();
    s += v[d]! * v[d]!;
  }
  const inv = 1 / Math.sqrt(s);
  for (let d = 0; d < DIM; d++) v[d]! *= inv;
  return v;
}

function time<T>(fn: () => T): [T, number] {
  const t = performance.now();
  const out = fn();
  return [out, performance.now() - t];
}

/** The peer: a dot product per stored row (unit vectors: the same order as L2), keeping the top K. */
function peerScan(all: Float32Array, qv: Float32Array, n: number): { id: number; s: number }[] {
  const ids = new Int32Array(K).fill(-1);
  const sc = new Float64Array(K).fill(-Infinity);
  for (let i = 0; i < n; i++) {
    const o = i * DIM;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let d = 0; d < DIM; d += 4) {
      s0 += all[o + d]! * qv[d]!;
      s1 += all[o + d + 1]! * qv[d + 1]!;
      s2 += all[o + d + 2]! * qv[d + 2]!;
      s3 += all[o + d + 3]! * qv[d + 3]!;
    }
    const s = s0 + s1 + s2 + s3;
    if (s > sc[K - 1]!) {
      let j = K - 1;
      while (j > 0 && sc[j - 1]! < s) {
        sc[j] = sc[j - 1]!;
        ids[j] = ids[j - 1]!;
        j--;
      }
      sc[j] = s;
      ids[j] = i + 1;
    }
  }
  return [...ids].map((id, j) => ({ id, s: sc[j]! }));
}

async function child(n: number, nq: number, oversamples: number[]) {
  const file = join(tmpdir(), `nanorag-vector-bench-${process.pid}.db`);
  rmSync(file, { force: true });
  const db = new Database(file, { create: true });
  sqliteVec.load(db);
  db.run("PRAGMA cache_size = -262144");
  db.run("PRAGMA journal_mode = OFF");
  db.run("PRAGMA synchronous = OFF");
  const store = new VectorStore(db, DIM);
  store.create();
  // Build: the same inserts as the dense plugin's index hook, in one transaction, 10k at a time.
  const t0 = performance.now();
  db.run("BEGIN");
  const batch = 10_000;
  const ids: number[] = [];
  const vs: Float32Array[] = [];
  let genMs = 0;
  for (let i = 0; i < n; i += batch) {
    ids.length = 0;
    vs.length = 0;
    const tg = performance.now();
    for (let j = i; j < Math.min(n, i + batch); j++) {
      ids.push(j + 1);
      vs.push(vectorAt(j));
    }
    genMs += performance.now() - tg;
    store.insert(ids, vs);
  }
  db.run("COMMIT");
  const buildMs = performance.now() - t0 - genMs;
  const queries = Array.from({ length: nq }, (_, q) => queryAt(q, n));
  // The first exact query loads every float vector into memory (once per open KB).
  const [, loadMs] = time(() => store.exact(queries[0]!, K));
  const rssAfterLoad = rssPeakMiB();
  store.quantized(queries[0]!, K, 10);
  // sqlite-vec's vec0 KNN over the same file: the scan exact search replaced.
  const vec0Ms: number[] = [];
  let vec0Agree = 0;
  for (let q = 0; q < (n >= 1_000_000 ? Math.min(nq, 10) : Math.min(nq, 30)); q++) {
    const [rows, ms] = time(() => db.query(`SELECT rowid AS id FROM dense_vec WHERE embedding MATCH ? AND k = ? ORDER BY distance`).all(queries[q]!, K) as { id: number }[]);
    vec0Ms.push(ms);
    const mine = store.exact(queries[q]!, K).map((x) => x.id);
    vec0Agree += rows.filter((r, i) => mine[i] === r.id).length;
  }
  const exactRuns = n >= 1_000_000 ? Math.min(nq, 30) : nq;
  const exact: Neighbor[][] = [];
  const exactMs: number[] = [];
  for (let q = 0; q < nq; q++) {
    const [res, ms] = time(() => store.exact(queries[q]!, K));
    exact.push(res);
    if (q < exactRuns) exactMs.push(ms);
  }
  const quant = oversamples.map((os) => {
    const ms: number[] = [];
    let hit = 0;
    for (let q = 0; q < nq; q++) {
      const [res, t] = time(() => store.quantized(queries[q]!, K, os));
      ms.push(t);
      const truth = new Set(exact[q]!.map((x) => x.id));
      hit += res.filter((x) => truth.has(x.id)).length;
    }
    return { oversample: os, p50: pct(ms, 50), p99: pct(ms, 99), recall10: hit / (nq * K) };
  });
  const rssStore = rssPeakMiB();
  db.close();
  const fileMiB = statSync(file).size / 2 ** 20;
  rmSync(file, { force: true });

  // Peer: a plain Float32Array holding every vector, scanned with a dot product per row.
  const tp = performance.now();
  const all = new Float32Array(n * DIM);
  const tmp = new Float32Array(DIM);
  for (let i = 0; i < n; i++) all.set(vectorAt(i, tmp), i * DIM);
  const peerBuildMs = performance.now() - tp;
  const peerRuns = n >= 1_000_000 ? Math.min(nq, 30) : nq;
  const peerMs: number[] = [];
  let agree = 0;
  for (let q = 0; q < peerRuns; q++) {
    const qv = queries[q]!;
    const [top, ms] = time(() => peerScan(all, qv, n));
    peerMs.push(ms);
    const truth = new Set(exact[q]!.map((x) => x.id));
    agree += top.filter((x) => truth.has(x.id)).length;
  }
  const result = {
    n,
    dim: DIM,
    queries: nq,
    build_s: buildMs / 1000,
    rows_per_s: n / (buildMs / 1000),
    gen_s: genMs / 1000,
    exact_p50: pct(exactMs, 50),
    exact_p99: pct(exactMs, 99),
    exact_runs: exactMs.length,
    load_ms: loadMs,
    peak_rss_after_load_mib: rssAfterLoad,
    vec0_p50: pct(vec0Ms, 50),
    vec0_p99: pct(vec0Ms, 99),
    vec0_same_order: vec0Agree / (vec0Ms.length * K),
    quantized: quant,
    file_mib: fileMiB,
    peak_rss_store_mib: rssStore,
    peer_fill_s: peerBuildMs / 1000,
    peer_p50: pct(peerMs, 50),
    peer_p99: pct(peerMs, 99),
    peer_agrees_with_exact: agree / (peerRuns * K),
    peak_rss_with_peer_mib: rssPeakMiB(),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv.includes("--child")) {
  await child(Number(arg("child", "100000")), Number(arg("queries", "100")), arg("oversample", "4,10,20,40").split(",").map(Number));
} else {
  const sizes = arg("sizes", "100000,1000000").split(",").map(Number);
  const rows: Record<string, unknown>[] = [];
  for (const n of sizes) {
    console.error(`vector bench: ${n.toLocaleString("en-US")} x ${DIM}-d ...`);
    const p = Bun.spawnSync([process.execPath, import.meta.path, "--child", String(n), "--queries", arg("queries", "100"), "--oversample", arg("oversample", "4,10,20,40")], {
      stdout: "pipe",
      stderr: "inherit",
    });
    if (p.exitCode !== 0) process.exit(p.exitCode ?? 1);
    rows.push(JSON.parse(p.stdout.toString().trim().split("\n").pop()!));
  }
  const f = (x: number, d = 1) => x.toFixed(d);
  console.log(`| vectors | build (rows/s) | load ms | exact p50 / p99 ms | vec0 KNN p50 / p99 ms (same order) | peer Float32Array p50 / p99 ms | file MiB | peak RSS MiB (after load / store / +peer) |`);
  console.log(`|---|---|---|---|---|---|---|---|`);
  for (const r of rows as any[]) {
    console.log(
      `| ${r.n.toLocaleString("en-US")} | ${f(r.build_s)} s (${Math.round(r.rows_per_s).toLocaleString("en-US")}) | ${f(r.load_ms, 0)} | ${f(r.exact_p50)} / ${f(r.exact_p99)} | ${f(r.vec0_p50)} / ${f(r.vec0_p99)} (${r.vec0_same_order.toFixed(3)}) | ${f(r.peer_p50)} / ${f(r.peer_p99)} | ${f(r.file_mib, 0)} | ${r.peak_rss_after_load_mib} / ${r.peak_rss_store_mib} / ${r.peak_rss_with_peer_mib} |`,
    );
  }
  console.log(`\n| vectors | oversample | quantised p50 / p99 ms | recall@10 vs exact |`);
  console.log(`|---|---|---|---|`);
  for (const r of rows as any[]) for (const q of r.quantized) console.log(`| ${r.n.toLocaleString("en-US")} | ${q.oversample} | ${f(q.p50)} / ${f(q.p99)} | ${q.recall10.toFixed(3)} |`);
  console.log(`\n${JSON.stringify(rows)}`);
}
