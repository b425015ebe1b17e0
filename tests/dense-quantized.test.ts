import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { BIT_TABLE, VectorStore } from "../src/dense/store.ts";
import { openDatabase } from "../src/kb/sqlite.ts";
import { unitVectors } from "../src/dense/testkit.ts";
import { tempDir } from "./helpers.ts";

const DIM = 72; // not a multiple of 32: the last word of each row is partly padding


/** The quantised search written as SQL: Hamming order with ties by id, then exact cosine re-score. */
function reference(store: VectorStore, q: Float32Array, k: number, oversample: number, allowed: Set<number> | null) {
  const rows = store.db
    .query(`SELECT id FROM ${BIT_TABLE} ORDER BY vec_distance_hamming(vec_bit(b), vec_bit(vec_quantize_binary(?))), id`)
    .all(q) as { id: number }[];
  const cand = rows.map((r) => r.id).filter((id) => !allowed || allowed.has(id)).slice(0, k * oversample);
  const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
  return cand
    .map((id) => ({ id, score: dot(q, store.vector(id)!) }))
    .sort((a, b) => b.score - a.score || a.id - b.id)
    .slice(0, k)
    .map((n) => n.id);
}

describe("quantised search from in-memory sign bits", () => {
  test("matches the SQL definition, with and without a filter, and sees new vectors", async () => {
    const db = await openDatabase(join(tempDir(), "v.db"), { create: true });
    db.run("PRAGMA synchronous = OFF"); // 800 single-row commits: without this, fsyncs dominate on a busy disk
    const store = new VectorStore(db, DIM);
    store.create();
    const vectors = unitVectors(400, DIM, 5);
    store.insert(vectors.map((_, i) => i + 1), vectors);
    const allowed = new Set(Array.from({ length: 150 }, (_, i) => 2 * i + 1));
    for (const q of unitVectors(12, DIM, 9)) {
      expect(store.quantized(q, 10, 4).map((n) => n.id)).toEqual(reference(store, q, 10, 4, null));
      expect(store.quantized(q, 10, 4, allowed).map((n) => n.id)).toEqual(reference(store, q, 10, 4, allowed));
    }
    const extra = unitVectors(1, DIM, 77)[0]!;
    store.insert([1000], [extra]);
    expect(store.quantized(extra, 1, 4)[0]!.id).toBe(1000);
    store.delete([1000]);
    expect(store.quantized(extra, 1, 4)[0]!.id).not.toBe(1000);
    db.close();
  });
});
