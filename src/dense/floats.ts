import type { Database } from "bun:sqlite";
import { availableParallelism } from "node:os";
import { UserError } from "../errors.ts";
import { knn } from "./knn.ts";
import { Snapshots } from "./snapshot.ts";

/** The float vectors with their ids, rows sorted by id (so a tie between rows goes to the lower id). */
interface Rows {
  ids: Int32Array;
  vectors: Float32Array;
}

const snapshots = new Snapshots<Rows>();
const THREADS = Math.min(4, availableParallelism());
const GC_EVERY_BYTES = 128 << 20;

/**
 * Every chunk's float vector in one Float32Array, loaded once per open KB (see Snapshots) and scanned
 * exactly by the native kernel (nr_knn, native/cpu/knn.c): squared L2 over every row, or over the rows
 * a filter allows, top k with ties by id, the same order as sqlite-vec's vec0 KNN. Costs 4 x dim bytes
 * per vector of memory; loading takes about as long as one vec0 scan.
 */
export class FloatRows {
  private constructor(
    private readonly rows: Rows,
    readonly dim: number,
  ) {}

  static of(db: Database, table: string, dim: number): FloatRows {
    return new FloatRows(snapshots.get(db, () => load(db, table, dim)), dim);
  }

  static invalidate(db: Database): void {
    snapshots.invalidate(db);
  }

  get size(): number {
    return this.rows.ids.length;
  }

  /** The k nearest rows (all of them when allowed is null) as ids with squared L2 distances. */
  nearest(query: Float32Array, k: number, allowed: Iterable<number> | null): { id: number; distance2: number }[] {
    if (query.length !== this.dim) throw new Error(`query has ${query.length} dims, the vectors ${this.dim}`);
    const subset = allowed ? this.rowsOf(allowed) : null;
    const n = subset ? subset.length : this.size;
    const { rows, distance2 } = knn(this.rows.vectors, this.dim, subset, n, query, Math.min(k, n), THREADS);
    return Array.from(rows, (r, i) => ({ id: this.rows.ids[r]!, distance2: distance2[i]! }));
  }

  /** Row indices of the given ids that have a vector, by binary search over the sorted ids. */
  private rowsOf(ids: Iterable<number>): Int32Array {
    const sorted = this.rows.ids;
    const out: number[] = [];
    for (const id of ids) {
      let lo = 0;
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (sorted[mid]! < id) lo = mid + 1;
        else hi = mid;
      }
      if (lo < sorted.length && sorted[lo] === id) out.push(lo);
    }
    return Int32Array.from(out);
  }
}

/**
 * Reads vec0's own storage, one row per chunk of 128 vectors: `{table}_chunks` (a validity bitmap and
 * the int64 id of each slot) joined to `{table}_vector_chunks00` (the slots' vectors in one blob). Far
 * cheaper than a virtual-table row, or even a JS object, per vector. Runs of valid slots are copied
 * whole. Rows come out in chunk order, which is id order when ids were inserted ascending (kb build);
 * otherwise they are sorted by id once. The layout is sqlite-vec's (pinned in package-lock.json); a
 * count that disagrees with `{table}_rowids` is an error, never a silently missing row.
 */
function load(db: Database, table: string, dim: number): Rows {
  const n = (db.query(`SELECT count(*) AS n FROM ${table}_rowids WHERE chunk_id IS NOT NULL`).get() as { n: number }).n;
  const ids = new Int32Array(n);
  const vectors = new Float32Array(n * dim);
  let placed = 0;
  let unreleased = 0;
  const chunks = db.query(`SELECT c.size AS size, c.validity AS valid, c.rowids AS rowids, v.vectors AS vectors FROM ${table}_chunks c JOIN ${table}_vector_chunks00 v ON v.rowid = c.chunk_id ORDER BY c.chunk_id`);
  for (const r of chunks.iterate() as Iterable<{ size: number; valid: Uint8Array; rowids: Uint8Array; vectors: Uint8Array }>) {
    if (r.rowids.byteLength < r.size * 8 || r.vectors.byteLength < r.size * dim * 4) break;
    const slotIds = new DataView(r.rowids.buffer, r.rowids.byteOffset, r.rowids.byteLength);
    const blob = r.vectors.byteOffset % 4 === 0 ? r.vectors : r.vectors.slice();
    const floats = new Float32Array(blob.buffer, blob.byteOffset, r.size * dim);
    for (let i = 0; i < r.size; ) {
      if (!((r.valid[i >> 3]! >> (i & 7)) & 1)) {
        i++;
        continue;
      }
      let e = i;
      while (e < r.size && (r.valid[e >> 3]! >> (e & 7)) & 1) e++;
      if (placed + (e - i) > n) break;
      for (let j = i; j < e; j++) ids[placed + j - i] = Number(slotIds.getBigInt64(j * 8, true));
      vectors.set(floats.subarray(i * dim, e * dim), placed * dim);
      placed += e - i;
      i = e;
    }
    // Every blob is a fresh ArrayBuffer that the collector frees late: without this, loading 1M
    // vectors (1.5 GiB) peaked at twice that.
    unreleased += r.vectors.byteLength;
    if (unreleased > GC_EVERY_BYTES) {
      Bun.gc(true);
      unreleased = 0;
    }
  }
  if (placed !== n) {
    throw new UserError(`${table}: found ${placed} vectors in sqlite-vec's vec0 chunks where ${table}_rowids lists ${n}; run \`nanorag kb doctor\`, or \`nanorag kb reindex\` to rewrite them`);
  }
  return sortedById(ids, vectors, dim);
}

/** The rows in ascending id order (ties in the scan go to the lower row, which must be the lower id). */
function sortedById(ids: Int32Array, vectors: Float32Array, dim: number): Rows {
  let sorted = true;
  for (let i = 1; i < ids.length && sorted; i++) sorted = ids[i - 1]! < ids[i]!;
  if (sorted) return { ids, vectors };
  const order = Array.from(ids.keys()).sort((a, b) => ids[a]! - ids[b]!);
  const out = new Float32Array(vectors.length);
  order.forEach((from, to) => out.set(vectors.subarray(from * dim, (from + 1) * dim), to * dim));
  return { ids: Int32Array.from(order, (i) => ids[i]!), vectors: out };
}
