import type { Database } from "bun:sqlite";
import { FloatRows } from "./floats.ts";
import { Snapshots } from "./snapshot.ts";

/**
 * Vectors inside the KB file, keyed by chunk id:
 *  - `dense_vec`, a sqlite-vec `vec0` table of float[D]: the stored vectors, point lookups to re-score
 *    candidates, and the source of exact KNN, which scans them from memory (`FloatRows`, a native
 *    kernel; L2 on unit vectors, so the order is cosine's);
 *  - `dense_sign`, a plain table of the sign bits (D/8 bytes, 32x smaller): a Hamming prefilter,
 *    `ORDER BY vec_distance_hamming(...) LIMIT k x oversample`, whose candidates are re-scored exactly.
 *    (A vec0 bit[D] KNN costs grows with k: 5 / 17 / 66 ms for k = 10 / 100 / 400 at 100k rows, where
 *    SQLite's bounded sorter over the plain table stays at ~20 ms; see docs/benchmarks.md.)
 * Scores are cosine similarities: 1 - d^2 / 2 for unit vectors at L2 distance d.
 */
export const VEC_TABLE = "dense_vec";
export const BIT_TABLE = "dense_sign";
const FLOAT_CHUNK = 128;

export interface Neighbor {
  id: number;
  score: number;
}

export class VectorStore {
  constructor(
    readonly db: Database,
    readonly dim: number,
  ) {}

  get hasBits(): boolean {
    return this.dim % 8 === 0;
  }

  static exists(db: Database): boolean {
    return Boolean(db.query("SELECT 1 FROM sqlite_master WHERE name = ?").get(VEC_TABLE));
  }

  create(): void {
    // chunk_size 128 (default 1024): a point lookup walks the chunk's blob overflow chain, so smaller
    // chunks make re-scoring ~5x faster at the same brute-force scan speed (docs/benchmarks.md).
    this.db.run(`CREATE VIRTUAL TABLE IF NOT EXISTS ${VEC_TABLE} USING vec0(embedding float[${this.dim}], chunk_size=${FLOAT_CHUNK})`);
    if (this.hasBits) this.db.run(`CREATE TABLE IF NOT EXISTS ${BIT_TABLE} (id INTEGER PRIMARY KEY, b BLOB NOT NULL)`);
  }

  static drop(db: Database): void {
    db.run(`DROP TABLE IF EXISTS ${VEC_TABLE}`);
    db.run(`DROP TABLE IF EXISTS ${BIT_TABLE}`);
  }

  /** Drops this process's in-memory copies, which no longer match the tables. */
  private invalidate(): void {
    SignBits.snapshots.invalidate(this.db);
    FloatRows.invalidate(this.db);
  }

  insert(ids: number[], vectors: Float32Array[]): void {
    this.invalidate();
    const f = this.db.prepare(`INSERT INTO ${VEC_TABLE}(rowid, embedding) VALUES (?, ?)`);
    const b = this.hasBits ? this.db.prepare(`INSERT INTO ${BIT_TABLE}(id, b) VALUES (?, vec_quantize_binary(?))`) : null;
    for (let i = 0; i < ids.length; i++) {
      f.run(ids[i]!, vectors[i]!);
      b?.run(ids[i]!, vectors[i]!);
    }
  }

  delete(ids: number[]): void {
    this.invalidate();
    const f = this.db.prepare(`DELETE FROM ${VEC_TABLE} WHERE rowid = ?`);
    const b = this.hasBits ? this.db.prepare(`DELETE FROM ${BIT_TABLE} WHERE id = ?`) : null;
    for (const id of ids) {
      f.run(id);
      b?.run(id);
    }
  }

  /** Row count from vec0's rowid shadow table (a count(*) on the virtual table reads every chunk). */
  count(table = VEC_TABLE): number {
    const t = table === VEC_TABLE ? `${table}_rowids` : table;
    return (this.db.query(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
  }

  ids(table = VEC_TABLE): number[] {
    const t = table === VEC_TABLE ? `${table}_rowids` : table;
    return (this.db.query(`SELECT rowid AS id FROM ${t} ORDER BY rowid`).all() as { id: number }[]).map((r) => r.id);
  }

  /**
   * Exact distances of the given rows by point lookups (vec0 reads one vector per rowid). A rowid IN
   * (...) constraint on vec0 scans every chunk instead, so this is the fast path for few rows.
   */
  private distances(query: Float32Array, ids: Iterable<number>): Neighbor[] {
    const st = this.db.query(`SELECT vec_distance_l2(embedding, ?) AS distance FROM ${VEC_TABLE} WHERE rowid = ?`);
    const rows: { id: number; distance: number }[] = [];
    for (const id of ids) {
      const r = st.get(query, id) as { distance: number } | null;
      if (r) rows.push({ id, distance: r.distance });
    }
    return toNeighbors(rows);
  }

  /**
   * Exact KNN over float vectors, scanned from memory by the native kernel: every vector, or only
   * those of `allowed` (a metadata filter's chunk ids), so the k results are the exact top k among
   * the allowed rows. Same order as sqlite-vec's vec0 KNN (L2, ties by id), about 5x faster.
   */
  exact(query: Float32Array, k: number, allowed: Set<number> | null = null): Neighbor[] {
    if (allowed && allowed.size === 0) return [];
    const rows = FloatRows.of(this.db, VEC_TABLE, this.dim).nearest(query, k, allowed);
    return rows.map((r) => ({ id: r.id, score: 1 - r.distance2 / 2 }));
  }

  /**
   * Binary-quantised prefilter (Hamming KNN over sign bits, k x oversample candidates, ties by id)
   * then an exact float re-score of just those candidates. The sign bits are scanned from memory
   * (`SignBits`, loaded once per process and KB state) rather than by an SQL ORDER BY, which costs
   * about 20 ms per 100k rows against about 2 ms here.
   */
  quantized(query: Float32Array, k: number, oversample: number, allowed: Set<number> | null = null): Neighbor[] {
    if (!this.hasBits) return this.exact(query, k, allowed);
    if (allowed && allowed.size === 0) return [];
    const kc = Math.max(k, Math.ceil(k * oversample));
    if (!this.db.query("SELECT 1 FROM sqlite_master WHERE name = ?").get(BIT_TABLE)) return this.exact(query, k, allowed);
    const qbytes = (this.db.query("SELECT vec_quantize_binary(?) AS b").get(query) as { b: Uint8Array }).b;
    return this.distances(query, SignBits.of(this.db, this.dim).nearest(qbytes, kc, allowed)).slice(0, k);
  }

  /** The stored float vector of one chunk (for checks and tests). */
  vector(id: number): Float32Array | null {
    const r = this.db.query(`SELECT embedding FROM ${VEC_TABLE} WHERE rowid = ?`).get(id) as { embedding: Uint8Array } | null;
    return r ? new Float32Array(r.embedding.slice().buffer) : null;
  }
}

function toNeighbors(rows: { id: number; distance: number }[]): Neighbor[] {
  return rows.map((r) => ({ id: r.id, score: 1 - (r.distance * r.distance) / 2 })).sort((a, b) => b.score - a.score || a.id - b.id);
}

/**
 * Every chunk's sign bits packed in one Uint32Array, kept per open database (`Snapshots`).
 */
class SignBits {
  static readonly snapshots = new Snapshots<SignBits>();

  private constructor(
    readonly ids: Int32Array,
    readonly words: Uint32Array,
    readonly wordsPerRow: number,
  ) {}

  static of(db: Database, dim: number): SignBits {
    return SignBits.snapshots.get(db, () => SignBits.load(db, dim));
  }

  private static load(db: Database, dim: number): SignBits {
    const rows = db.query(`SELECT id, b FROM ${BIT_TABLE} ORDER BY id`).all() as { id: number; b: Uint8Array }[];
    const wordsPerRow = Math.ceil(dim / 32);
    const bytes = new Uint8Array(rows.length * wordsPerRow * 4);
    const ids = new Int32Array(rows.length);
    rows.forEach((r, i) => {
      ids[i] = r.id;
      bytes.set(r.b, i * wordsPerRow * 4);
    });
    return new SignBits(ids, new Uint32Array(bytes.buffer), wordsPerRow);
  }

  /** The `count` rows nearest to `query` in Hamming distance, ties broken by lower id. */
  nearest(query: Uint8Array, count: number, allowed: Set<number> | null): number[] {
    const w = this.wordsPerRow;
    const padded = new Uint8Array(w * 4);
    padded.set(query);
    const q = new Uint32Array(padded.buffer);
    const n = this.ids.length;
    const dist = new Uint16Array(n);
    const histogram = new Uint32Array(w * 32 + 1);
    for (let i = 0; i < n; i++) {
      if (allowed && !allowed.has(this.ids[i]!)) {
        dist[i] = 0xffff;
        continue;
      }
      let d = 0;
      for (let j = 0, o = i * w; j < w; j++) {
        let x = (this.words[o + j]! ^ q[j]!) >>> 0;
        x -= (x >>> 1) & 0x55555555;
        x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
        d += (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
      }
      dist[i] = d;
      histogram[d]!++;
    }
    // The distance below which every row is taken; rows at exactly that distance fill up by id order.
    let cut = 0;
    let below = 0;
    while (cut < histogram.length && below + histogram[cut]! < count) below += histogram[cut++]!;
    let atCut = count - below;
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const d = dist[i]!;
      if (d < cut) out.push(this.ids[i]!);
      else if (d === cut && atCut > 0) {
        out.push(this.ids[i]!);
        atCut--;
      }
    }
    return out;
  }
}
