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
 * Reads vec0's own storage: `{table}_rowids` (id -> chunk, slot) and `{table}_vector_chunks00` (one
 * blob of chunk_size vectors per chunk), a few hundred blob reads instead of one virtual-table row per
 * vector (about 10x faster). The layout is sqlite-vec's (pinned in package-lock.json); a vector not found
 * where it says is an error, never a silently missing row.
 */
function load(db: Database, table: string, dim: number): Rows {
  const slots = db.query(`SELECT rowid AS id, chunk_id AS c, chunk_offset AS o FROM ${table}_rowids WHERE chunk_id IS NOT NULL ORDER BY rowid`).all() as { id: number; c: number; o: number }[];
  const n = slots.length;
  const ids = Int32Array.from(slots, (s) => s.id);
  const vectors = new Float32Array(n * dim);
  // Rows grouped by chunk (a counting sort on chunk id), so each chunk blob is read once.
  let maxChunk = 0;
  for (const s of slots) maxChunk = Math.max(maxChunk, s.c);
  const start = new Int32Array(maxChunk + 2);
  for (const s of slots) start[s.c + 1]!++;
  for (let c = 0; c <= maxChunk; c++) start[c + 1]! += start[c]!;
  const byChunk = new Int32Array(n);
  const fill = start.slice();
  slots.forEach((s, i) => (byChunk[fill[s.c]!++] = i));
  let placed = 0;
  for (const r of db.query(`SELECT rowid AS c, vectors AS v FROM ${table}_vector_chunks00`).iterate() as Iterable<{ c: number; v: Uint8Array }>) {
    if (r.c > maxChunk || r.v.byteLength % (dim * 4) !== 0) continue;
    const bytes = r.v.byteOffset % 4 === 0 ? r.v : r.v.slice();
    const blob = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    for (let j = start[r.c]!; j < start[r.c + 1]!; j++) {
      const i = byChunk[j]!;
      const o = slots[i]!.o * dim;
      if (o + dim > blob.length) continue;
      vectors.set(blob.subarray(o, o + dim), i * dim);
      placed++;
    }
  }
  if (placed !== n) {
    throw new UserError(`${table}: ${n - placed} of ${n} vectors were not where sqlite-vec's vec0 layout (chunks of vectors, ${table}_rowids slots) puts them; run \`nanorag kb doctor\`, or \`nanorag kb reindex\` to rewrite them`);
  }
  return { ids, vectors };
}
