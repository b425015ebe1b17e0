import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import * as sqliteVec from "sqlite-vec";
import { VEC_TABLE, VectorStore } from "../src/dense/store.ts";
import { unitVectors } from "../src/dense/testkit.ts";
import { tempDir } from "./helpers.ts";

const DIM = 100; // not a multiple of 32 or 8: the kernel's scalar tail runs


function open(path: string): Database {
  const db = new Database(path, { create: true });
  sqliteVec.load(db);
  db.run("PRAGMA synchronous = OFF"); // no fsync per insert: the test is about results, not durability
  return db;
}

/** Exact KNN as SQL: every row's sqlite-vec L2 distance, ties by id. */
function reference(db: Database, q: Float32Array, k: number, allowed: Set<number> | null = null): number[] {
  const rows = db.query(`SELECT rowid AS id FROM ${VEC_TABLE} ORDER BY vec_distance_l2(embedding, ?), rowid`).all(q) as { id: number }[];
  return rows.map((r) => r.id).filter((id) => !allowed || allowed.has(id)).slice(0, k);
}

/** sqlite-vec's own vec0 KNN (what exact search ran before it moved to memory). */
function vec0Knn(db: Database, q: Float32Array, k: number): number[] {
  return (db.query(`SELECT rowid AS id FROM ${VEC_TABLE} WHERE embedding MATCH ? AND k = ? ORDER BY distance`).all(q, k) as { id: number }[]).map((r) => r.id);
}

describe("exact dense search from memory (native kernel)", () => {
  test("same ids and order as sqlite-vec, with filters, ties by id, across writes and connections", () => {
    const path = join(tempDir(), "exact.db");
    const db = open(path);
    const store = new VectorStore(db, DIM);
    store.create();
    const vectors = unitVectors(1000, DIM, 3); // 8 vec0 chunks of 128
    // ids not in insertion order, and a copy of vector 0 under a higher id: an exact tie
    const ids = vectors.map((_, i) => (i * 7919) % 1000 + 1);
    store.insert(ids, vectors);
    store.insert([5000], [vectors[0]!]);
    const queries = unitVectors(10, DIM, 9);
    for (const q of queries) {
      const got = store.exact(q, 10).map((n) => n.id);
      expect(got).toEqual(vec0Knn(db, q, 10));
      expect(got).toEqual(reference(db, q, 10));
    }
    const tie = store.exact(vectors[0]!, 2);
    expect(tie.map((n) => n.id)).toEqual([ids[0]!, 5000]);
    expect(tie[0]!.score).toBeCloseTo(1, 6);
    expect(tie[1]!.score).toBe(tie[0]!.score);
    // Scores are cosines, as sqlite-vec's distance gives them.
    const q0 = queries[0]!;
    const d = (db.query(`SELECT distance FROM ${VEC_TABLE} WHERE embedding MATCH ? AND k = 1`).get(q0) as { distance: number }).distance;
    expect(store.exact(q0, 1)[0]!.score).toBeCloseTo(1 - (d * d) / 2, 6);
    // Filters: a large and a tiny allowed set, ids with no vector ignored, k above the allowed count.
    const even = new Set(ids.filter((id) => id % 2 === 0));
    const few = new Set([3, 17, 400, 999, 123456]);
    for (const q of queries.slice(0, 3)) {
      expect(store.exact(q, 10, even).map((n) => n.id)).toEqual(reference(db, q, 10, even));
      expect(store.exact(q, 10, few).map((n) => n.id)).toEqual(reference(db, q, 10, few));
    }
    expect(store.exact(q0, 10, new Set([123456]))).toEqual([]);
    // Writes through the store are seen at once; vec0 reuses deleted slots.
    store.delete([ids[0]!, 5000]);
    expect(store.exact(vectors[0]!, 1)[0]!.id).not.toBe(ids[0]!);
    const fresh = unitVectors(3, DIM, 77);
    store.insert([6001, 6002, 6003], fresh);
    expect(store.exact(fresh[1]!, 1)[0]!.id).toBe(6002);
    expect(store.exact(q0, 1000 + 10).length).toBe(store.count());
    // Another connection's write moves the file's data_version, and this one reloads.
    const other = open(path);
    new VectorStore(other, DIM).insert([7000], [queries[5]!]);
    other.close();
    expect(store.exact(queries[5]!, 1)[0]!.id).toBe(7000);
    for (const q of queries) expect(store.exact(q, 10).map((n) => n.id)).toEqual(reference(db, q, 10));
    db.close();
  });

  test("a scan split across threads merges to the same top k, ties across slices to the lower id", () => {
    const dim = 16;
    const db = open(":memory:");
    const store = new VectorStore(db, dim);
    store.create();
    // 40,000 rows: two slices of at least 16,384 rows each, so the kernel runs two threads where it can.
    const n = 40_000;
    const vectors = unitVectors(n, dim, 21);
    db.run("BEGIN");
    store.insert(vectors.map((_, i) => i + 1), vectors);
    store.insert([n + 1], [vectors[5]!]); // the same vector as id 6, in the last slice
    db.run("COMMIT");
    for (const q of unitVectors(3, dim, 8)) expect(store.exact(q, 10).map((h) => h.id)).toEqual(reference(db, q, 10));
    expect(store.exact(vectors[5]!, 2).map((h) => h.id)).toEqual([6, n + 1]);
    db.close();
  });
});

