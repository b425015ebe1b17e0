import type { Database } from "bun:sqlite";
import type { Chunk, PluginContext } from "../plugin-api.ts";

/** A term's postings: chunk ids and the term's frequency in each. */
export interface Postings {
  ids: Int32Array;
  tfs: Float32Array;
}

/** An analyzer's optional id form: the token ids of a text, and the term each id stands for. */
export interface TermIdSource {
  ids(text: string, out: number[]): void;
  term(id: number): string;
}

/** Per-chunk numbers the scorer needs (length for BM25, vector norm for cosine), indexed by chunk id. */
export interface IndexStats {
  perChunk: Float32Array;
  n: number;
  total: number;
}

function view<T extends Int32Array | Float32Array>(Ctor: { new (b: ArrayBuffer, o: number, l: number): T }, blob: Uint8Array): T {
  const aligned = blob.byteOffset % 4 === 0 ? blob : new Uint8Array(blob);
  return new Ctor(aligned.buffer as ArrayBuffer, aligned.byteOffset, aligned.byteLength / 4);
}

const bytes = (a: Int32Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * An inverted index kept in the plugin's own tables: one row per term holding packed postings,
 * and one row of per-chunk statistics. A query reads only the rows of its own terms, so latency
 * does not depend on loading the whole index into memory first.
 */
export class InvertedIndex {
  private cache = new WeakMap<Database, IndexStats>();

  constructor(
    readonly name: string,
    readonly analyze: (text: string) => string[],
    /** The number kept per chunk, computed from the frequencies of its distinct terms. */
    readonly chunkStat: (termFreqs: number[]) => number,
  ) {}

  private get postingsTable() {
    return `${this.name}_postings`;
  }
  private get statsTable() {
    return `${this.name}_stats`;
  }

  private ensureTables(db: Database) {
    db.run(`CREATE TABLE IF NOT EXISTS ${this.postingsTable} (term TEXT PRIMARY KEY, ids BLOB NOT NULL, tfs BLOB NOT NULL) WITHOUT ROWID`);
    db.run(`CREATE TABLE IF NOT EXISTS ${this.statsTable} (id INTEGER PRIMARY KEY CHECK (id = 0), per_chunk BLOB NOT NULL, n INTEGER NOT NULL, total REAL NOT NULL)`);
  }

  /** The text a chunk is indexed under: its document title, then its own text. */
  chunkText(c: Chunk): string {
    return c.title ? `${c.title} ${c.text}` : c.text;
  }

  stats(db: Database): IndexStats {
    let s = this.cache.get(db);
    if (s) return s;
    this.requireTables(db);
    const row = db.query<{ per_chunk: Uint8Array; n: number; total: number }, []>(`SELECT per_chunk, n, total FROM ${this.statsTable} WHERE id = 0`).get();
    s = row ? { perChunk: view(Float32Array, row.per_chunk), n: row.n, total: row.total } : { perChunk: new Float32Array(0), n: 0, total: 0 };
    this.cache.set(db, s);
    return s;
  }

  private requireTables(db: Database) {
    const exists = db.query(`SELECT 1 FROM sqlite_master WHERE name = ?`).get(this.statsTable);
    if (!exists) throw new Error(`the ${this.name} index is missing from this knowledge base; run \`nanorag kb reindex\``);
  }

  postings(db: Database, term: string): Postings | null {
    const row = db.query<{ ids: Uint8Array; tfs: Uint8Array }, [string]>(`SELECT ids, tfs FROM ${this.postingsTable} WHERE term = ?`).get(term);
    return row ? { ids: view(Int32Array, row.ids), tfs: view(Float32Array, row.tfs) } : null;
  }

  add(ctx: PluginContext, chunks: Chunk[]): void {
    const db = ctx.db;
    this.ensureTables(db);
    const stats = this.readStatsForWrite(db);
    const wasEmpty = stats.n === 0;
    // Terms get dense slots; counts live in a plain array reset through the slots a chunk touched.
    const terms: string[] = [];
    const ids: number[][] = [];
    const tfs: number[][] = [];
    const counts: number[] = [];
    const newSlot = (term: string) => {
      terms.push(term);
      ids.push([]);
      tfs.push([]);
      counts.push(0);
      return terms.length - 1;
    };
    const slotsOf = this.slotMapper(newSlot);
    const slots: number[] = [];
    const touched: number[] = [];
    const freqs: number[] = [];
    const perChunk = new Map<number, number>();
    let maxId = stats.perChunk.length - 1;
    for (const c of chunks) {
      slots.length = 0;
      slotsOf(this.chunkText(c), slots);
      touched.length = 0;
      for (const slot of slots) if (counts[slot]++ === 0) touched.push(slot);
      freqs.length = 0;
      for (const slot of touched) {
        const n = counts[slot]!;
        freqs.push(n);
        ids[slot]!.push(c.id);
        tfs[slot]!.push(n);
        counts[slot] = 0;
      }
      perChunk.set(c.id, this.chunkStat(freqs));
      stats.n++;
      stats.total += slots.length;
      if (c.id > maxId) maxId = c.id;
    }
    const upsert = db.query(`INSERT OR REPLACE INTO ${this.postingsTable} (term, ids, tfs) VALUES (?, ?, ?)`);
    for (let slot = 0; slot < terms.length; slot++) {
      const term = terms[slot]!;
      const old = wasEmpty ? null : this.postings(db, term);
      const offset = old?.ids.length ?? 0;
      const packedIds = new Int32Array(offset + ids[slot]!.length);
      const packedTfs = new Float32Array(packedIds.length);
      if (old) {
        packedIds.set(old.ids);
        packedTfs.set(old.tfs);
      }
      packedIds.set(ids[slot]!, offset);
      packedTfs.set(tfs[slot]!, offset);
      upsert.run(term, bytes(packedIds), bytes(packedTfs));
    }
    const grown = new Float32Array(maxId + 1);
    grown.set(stats.perChunk);
    for (const [id, v] of perChunk) grown[id] = v;
    stats.perChunk = grown;
    this.writeStats(db, stats);
  }

  /**
   * Turns a text into per-add slots, one per token. An analyzer that also gives term ids (see
   * `analyzeEnglish.termIds`) is counted through an id -> slot array, with no string per token.
   */
  private slotMapper(newSlot: (term: string) => number): (text: string, out: number[]) => void {
    const source = (this.analyze as { termIds?: TermIdSource }).termIds;
    if (source) {
      let slotOfId = new Int32Array(1024).fill(-1);
      const termIds: number[] = [];
      return (text, out) => {
        termIds.length = 0;
        source.ids(text, termIds);
        for (const id of termIds) {
          if (id >= slotOfId.length) {
            const grown = new Int32Array(Math.max(id + 1, slotOfId.length * 2)).fill(-1);
            grown.set(slotOfId);
            slotOfId = grown;
          }
          let slot = slotOfId[id]!;
          if (slot < 0) slot = slotOfId[id] = newSlot(source.term(id));
          out.push(slot);
        }
      };
    }
    const slotOfTerm = new Map<string, number>();
    return (text, out) => {
      for (const t of this.analyze(text)) {
        let slot = slotOfTerm.get(t);
        if (slot === undefined) slotOfTerm.set(t, (slot = newSlot(t)));
        out.push(slot);
      }
    };
  }

  remove(ctx: PluginContext, chunkIds: number[]): void {
    const db = ctx.db;
    const gone = new Set(chunkIds);
    const stats = this.readStatsForWrite(db);
    const terms = new Set<string>();
    for (const c of ctx.chunksById(chunkIds)) {
      const tokens = this.analyze(this.chunkText(c));
      for (const t of tokens) terms.add(t);
      stats.n--;
      stats.total -= tokens.length;
      stats.perChunk[c.id] = 0;
    }
    const upsert = db.query(`INSERT OR REPLACE INTO ${this.postingsTable} (term, ids, tfs) VALUES (?, ?, ?)`);
    const del = db.query(`DELETE FROM ${this.postingsTable} WHERE term = ?`);
    for (const term of terms) {
      const p = this.postings(db, term);
      if (!p) continue;
      const keep: number[] = [];
      for (let i = 0; i < p.ids.length; i++) if (!gone.has(p.ids[i]!)) keep.push(i);
      if (keep.length === 0) del.run(term);
      else upsert.run(term, bytes(Int32Array.from(keep, (i) => p.ids[i]!)), bytes(Float32Array.from(keep, (i) => p.tfs[i]!)));
    }
    this.writeStats(db, stats);
  }

  reindex(ctx: PluginContext, chunks: Chunk[]): void {
    ctx.db.run(`DROP TABLE IF EXISTS ${this.postingsTable}`);
    ctx.db.run(`DROP TABLE IF EXISTS ${this.statsTable}`);
    this.cache.delete(ctx.db);
    this.add(ctx, chunks);
  }

  /** Checks that every chunk is indexed exactly once and the totals add up. */
  doctor(ctx: PluginContext): string[] {
    const db = ctx.db;
    const problems: string[] = [];
    const s = this.stats(db);
    const chunkIds = db.query<{ id: number }, []>("SELECT id FROM chunks").all().map((r) => r.id);
    if (s.n !== chunkIds.length) problems.push(`${this.name}: index counts ${s.n} chunks, the KB has ${chunkIds.length}`);
    const seen = new Map<number, number>();
    let total = 0;
    for (const { ids, tfs } of db.query<{ ids: Uint8Array; tfs: Uint8Array }, []>(`SELECT ids, tfs FROM ${this.postingsTable}`).all()) {
      const idv = view(Int32Array, ids);
      const tfv = view(Float32Array, tfs);
      for (let i = 0; i < idv.length; i++) {
        seen.set(idv[i]!, 1);
        total += tfv[i]!;
      }
    }
    const missing = chunkIds.filter((id) => !seen.has(id));
    const orphans = [...seen.keys()].filter((id) => !chunkIds.includes(id));
    if (orphans.length) problems.push(`${this.name}: postings point at ${orphans.length} deleted chunks`);
    if (Math.abs(total - s.total) > 0.5) problems.push(`${this.name}: term total ${s.total} does not match postings (${total})`);
    const empty = missing.filter((id) => this.analyze(this.chunkText(ctx.chunksById([id])[0]!)).length > 0);
    if (empty.length) problems.push(`${this.name}: ${empty.length} chunks missing from the postings`);
    return problems;
  }

  private readStatsForWrite(db: Database): IndexStats {
    this.cache.delete(db);
    const s = this.stats(db);
    return { perChunk: s.perChunk.slice(), n: s.n, total: s.total };
  }

  private writeStats(db: Database, s: IndexStats) {
    db.query(`INSERT OR REPLACE INTO ${this.statsTable} (id, per_chunk, n, total) VALUES (0, ?, ?, ?)`).run(bytes(s.perChunk), s.n, s.total);
    this.cache.set(db, s);
  }
}

/**
 * The k best of `scores` over the touched ids, best first, ties broken by lower id. A bounded
 * min-heap keeps this O(n log k) instead of sorting every candidate.
 */
export function topK(ids: ArrayLike<number>, count: number, scores: Float64Array, k: number): Array<[number, number]> {
  const heap: Array<[number, number]> = [];
  const worse = (a: [number, number], b: [number, number]) => a[1] < b[1] || (a[1] === b[1] && a[0] > b[0]);
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && worse(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let j = 0; j < count; j++) {
    const id = ids[j]!;
    const e: [number, number] = [id, scores[id]!];
    if (e[1] === 0) continue;
    if (heap.length < k) {
      heap.push(e);
      for (let i = heap.length - 1; i > 0; ) {
        const p = (i - 1) >> 1;
        if (!worse(heap[i]!, heap[p]!)) break;
        [heap[i], heap[p]] = [heap[p]!, heap[i]!];
        i = p;
      }
    } else if (worse(heap[0]!, e)) {
      heap[0] = e;
      down(0);
    }
  }
  return heap.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
}

/** A query term found in the index, with its count in the query. */
export interface QueryTerm {
  term: string;
  queryCount: number;
  postings: Postings;
}

/**
 * Accumulates per-term contributions into a dense score array and returns the k best chunks.
 * `scorers` sees every query term the index knows (so it can normalise across them) and returns,
 * per term, the score of its i-th posting, or null to skip the term.
 */
export function scoreTerms(
  index: InvertedIndex,
  db: Database,
  terms: Map<string, number>,
  scorers: (found: QueryTerm[], stats: IndexStats) => Array<((i: number) => number) | null>,
  k: number,
  allowed: Set<number> | null,
): Array<[number, number]> {
  const stats = index.stats(db);
  const found: QueryTerm[] = [];
  for (const [term, queryCount] of terms) {
    const postings = index.postings(db, term);
    if (postings) found.push({ term, queryCount, postings });
  }
  const fns = scorers(found, stats);
  const scores = new Float64Array(stats.perChunk.length);
  const touched = new Int32Array(stats.perChunk.length);
  const seen = new Uint8Array(stats.perChunk.length);
  let count = 0;
  found.forEach(({ postings: p }, t) => {
    const f = fns[t];
    if (!f) return;
    for (let i = 0; i < p.ids.length; i++) {
      const id = p.ids[i]!;
      if (allowed && !allowed.has(id)) continue;
      if (!seen[id]) {
        seen[id] = 1;
        touched[count++] = id;
      }
      scores[id] += f(i);
    }
  });
  return topK(touched, count, scores, k);
}
