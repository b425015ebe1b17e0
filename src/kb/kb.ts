import type { Database } from "bun:sqlite";
import { existsSync, renameSync, rmSync } from "node:fs";
import { InputError, UserError } from "../errors.ts";
import { progress } from "../log.ts";
import type { Chunk, Hit, PluginContext, Retriever, SearchOptions } from "../plugin-api.ts";
import { getRetriever, indexingRetrievers } from "../retrieval/host.ts";
import { chunkText } from "./chunk.ts";
import type { DocRecord } from "./readers.ts";
import { checkSchema, createSchema, DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE, SCHEMA_VERSION } from "./schema.ts";
import { openDatabase } from "./sqlite.ts";

export interface BuildSettings {
  chunkSize?: number;
  chunkOverlap?: number;
  /** Retrievers whose indexes are built and kept up to date; default: every indexing retriever. */
  retrievers?: string[];
  /** Per-plugin settings stored in meta at build time, e.g. {"bm25.k1": "0.9"}. */
  settings?: Record<string, string>;
}

export interface WriteReport {
  added: number;
  updated: number;
  unchanged: number;
  removed: number;
  chunks: number;
}

const documentHash = (d: DocRecord) =>
  new Bun.CryptoHasher("sha256").update(JSON.stringify([d.title, d.content, d.source, d.metadata])).digest("hex");

/** An open knowledge base: one SQLite file with documents, chunks and each retriever's tables. */
export class Kb {
  readonly ctx: PluginContext;

  private constructor(readonly db: Database, readonly path: string) {
    const kb = this;
    this.ctx = {
      db,
      kbPath: path,
      getMeta: (key) => kb.getMeta(key),
      setMeta: (key, value) => kb.setMeta(key, value),
      filterChunkIds: (filter) => kb.filterChunkIds(filter),
      chunksById: (ids) => kb.chunksById(ids),
      retriever: (name) => getRetriever(name),
    };
  }

  /** Opens an existing KB, refusing missing files and other schema versions without touching them. */
  static async open(path: string, opts: { write?: boolean } = {}): Promise<Kb> {
    if (!existsSync(path)) throw new UserError(`${path}: no such knowledge base (create one with \`nanorag kb build\`)`);
    const db = await openDatabase(path, { readonly: !opts.write });
    try {
      checkSchema(db, path);
    } catch (e) {
      db.close();
      throw e;
    }
    return new Kb(db, path);
  }

  /**
   * Builds a new KB from documents. It is written to a temporary file and renamed over `path` only
   * when complete, so a failed build leaves any existing file exactly as it was.
   */
  static async build(path: string, docs: DocRecord[], settings: BuildSettings = {}): Promise<{ kb: Kb; report: WriteReport }> {
    const chunkSize = settings.chunkSize ?? DEFAULT_CHUNK_SIZE;
    const chunkOverlap = settings.chunkOverlap ?? DEFAULT_CHUNK_OVERLAP;
    if (!(Number.isInteger(chunkSize) && chunkSize > 0)) throw new UserError(`--chunk-size must be a positive integer, got ${chunkSize}`);
    if (!(Number.isInteger(chunkOverlap) && chunkOverlap >= 0 && chunkOverlap < chunkSize)) {
      throw new UserError(`--chunk-overlap must be an integer in [0, chunk-size), got ${chunkOverlap}`);
    }
    const retrievers = settings.retrievers ?? indexingRetrievers();
    for (const name of retrievers) if (!getRetriever(name).index) throw new UserError(`retriever "${name}" keeps no index; leave it out of --retrievers`);
    const tmp = `${path}.tmp-${process.pid}`;
    rmSync(tmp, { force: true });
    const db = await openDatabase(tmp, { create: true });
    // The temporary file is renamed into place only when complete, so no journal is needed while building.
    db.run("PRAGMA journal_mode = OFF");
    db.run("PRAGMA synchronous = OFF");
    const kb = new Kb(db, tmp);
    let report: WriteReport;
    try {
      createSchema(db);
      const now = new Date().toISOString();
      const meta: Record<string, string> = {
        schema_version: String(SCHEMA_VERSION),
        created_at: now,
        updated_at: now,
        chunk_size: String(chunkSize),
        chunk_overlap: String(chunkOverlap),
        retrievers: JSON.stringify(retrievers),
        ...settings.settings,
      };
      for (const [k, v] of Object.entries(meta)) kb.setMeta(k, v);
      report = await kb.write(docs, []);
      db.run("PRAGMA journal_mode = DELETE");
      db.close();
      renameSync(tmp, path);
    } catch (e) {
      db.close();
      rmSync(tmp, { force: true });
      throw e;
    }
    return { kb: await Kb.open(path, { write: true }), report };
  }

  close(): void {
    this.db.close();
  }

  getMeta(key: string): string | undefined {
    return this.db.query<{ value: string }, [string]>("SELECT value FROM meta WHERE key = ?").get(key)?.value;
  }

  setMeta(key: string, value: string): void {
    this.db.query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
  }

  /** The retrievers this KB keeps indexes for. */
  retrievers(): string[] {
    return JSON.parse(this.getMeta("retrievers") ?? "[]");
  }

  count(table: "documents" | "chunks"): number {
    return this.db.query<{ n: number }, []>(`SELECT count(*) AS n FROM ${table}`).get()!.n;
  }

  /**
   * Adds or replaces documents and removes ids, in one transaction. Unchanged documents (same
   * content hash) are skipped; changed ones have their chunks replaced. Any error, including one
   * thrown by a retriever's hook, rolls the whole write back.
   */
  async write(docs: DocRecord[], removeIds: string[]): Promise<WriteReport> {
    const db = this.db;
    const report: WriteReport = { added: 0, updated: 0, unchanged: 0, removed: 0, chunks: 0 };
    const size = Number(this.getMeta("chunk_size") ?? DEFAULT_CHUNK_SIZE);
    const overlap = Number(this.getMeta("chunk_overlap") ?? DEFAULT_CHUNK_OVERLAP);
    const indexers = this.retrievers().map(getRetriever);
    const existing = db.query<{ hash: string }, [string]>("SELECT hash FROM documents WHERE id = ?");
    const insertDoc = db.query(
      "INSERT INTO documents (id, title, content, source, metadata, hash, added_at) VALUES (?, ?, ?, ?, ?, ?, ?) " +
        "ON CONFLICT(id) DO UPDATE SET title = excluded.title, content = excluded.content, source = excluded.source, metadata = excluded.metadata, hash = excluded.hash, added_at = excluded.added_at",
    );
    const insertChunk = db.query("INSERT INTO chunks (id, doc_id, ordinal, text, start, end) VALUES (?, ?, ?, ?, ?, ?)");
    db.run("BEGIN IMMEDIATE");
    try {
      const stale: string[] = [];
      for (const id of removeIds) {
        if (!existing.get(id)) throw new InputError(this.path, null, "id", `no document with id "${id}"`);
        stale.push(id);
        report.removed++;
      }
      const fresh: DocRecord[] = [];
      const hashes: string[] = [];
      for (const d of docs) {
        const hash = documentHash(d);
        const prev = existing.get(d.id);
        if (prev?.hash === hash) {
          report.unchanged++;
          continue;
        }
        if (prev) {
          stale.push(d.id);
          report.updated++;
        } else report.added++;
        fresh.push(d);
        hashes.push(hash);
      }
      await this.dropChunks(stale, indexers);
      for (const id of removeIds) db.query("DELETE FROM documents WHERE id = ?").run(id);
      const now = new Date().toISOString();
      // Ids are assigned here (one past the largest) so inserts need no RETURNING round trip.
      let nextId = db.query<{ next: number }, []>("SELECT coalesce(max(id), 0) + 1 AS next FROM chunks").get()!.next;
      const bar = fresh.length >= 2000 ? progress("indexing", fresh.length, "docs") : undefined;
      const batch: Chunk[] = [];
      const flush = async () => {
        for (const r of indexers) await r.index!(this.ctx, batch);
        report.chunks += batch.length;
        batch.length = 0;
      };
      for (let i = 0; i < fresh.length; i++) {
        const d = fresh[i]!;
        insertDoc.run(d.id, d.title, d.content, d.source, JSON.stringify(d.metadata), hashes[i]!, now);
        for (const span of chunkText(d.content, size, overlap)) {
          const id = nextId++;
          insertChunk.run(id, d.id, span.ordinal, span.text, span.start, span.end);
          batch.push({ id, docId: d.id, ordinal: span.ordinal, title: d.title, text: span.text });
        }
        // Indexers merge each batch into postings they already hold, so fewer, larger batches are cheaper.
        if (batch.length >= 100_000) await flush();
        bar?.tick(i + 1);
      }
      await flush();
      bar?.done();
      this.setMeta("updated_at", now);
      db.run("COMMIT");
    } catch (e) {
      db.run("ROLLBACK");
      throw e;
    }
    return report;
  }

  private async dropChunks(docIds: string[], indexers: Retriever[]): Promise<void> {
    if (docIds.length === 0) return;
    const ids: number[] = [];
    const q = this.db.query<{ id: number }, [string]>("SELECT id FROM chunks WHERE doc_id = ? ORDER BY id");
    for (const d of docIds) for (const r of q.all(d)) ids.push(r.id);
    for (const r of indexers) await r.remove?.(this.ctx, ids);
    const del = this.db.query("DELETE FROM chunks WHERE doc_id = ?");
    for (const d of docIds) del.run(d);
  }

  /** Rebuilds every index from the stored chunks (after a plugin changes, or to refit an embedder). */
  async reindex(): Promise<void> {
    const chunks = this.chunksById(this.db.query<{ id: number }, []>("SELECT id FROM chunks ORDER BY id").all().map((r) => r.id));
    this.db.run("BEGIN IMMEDIATE");
    try {
      for (const r of this.retrievers().map(getRetriever)) {
        if (!r.reindex) throw new UserError(`retriever "${r.name}" cannot rebuild its index`);
        await r.reindex(this.ctx, chunks);
      }
      this.setMeta("updated_at", new Date().toISOString());
      this.db.run("COMMIT");
    } catch (e) {
      this.db.run("ROLLBACK");
      throw e;
    }
  }

  chunksById(ids: number[]): Chunk[] {
    if (ids.length === 0) return [];
    // One query for the whole list (a per-id query costs ~20 us each, which dominates deep rankings).
    const rows = this.db
      .query<{ id: number; doc_id: string; ordinal: number; title: string; text: string }, [string]>(
        "SELECT c.id, c.doc_id, c.ordinal, d.title, c.text FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN (SELECT value FROM json_each(?))",
      )
      .all(JSON.stringify(ids));
    const byId = new Map(rows.map((r) => [r.id, { id: r.id, docId: r.doc_id, ordinal: r.ordinal, title: r.title, text: r.text }]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  filterChunkIds(filter: Record<string, string> | undefined): Set<number> | null {
    if (!filter || Object.keys(filter).length === 0) return null;
    const where: string[] = [];
    const params: string[] = [];
    for (const [k, v] of Object.entries(filter)) {
      if (k === "source" || k === "title" || k === "id") where.push(`d.${k} = ?`);
      else {
        if (!/^[A-Za-z0-9_.-]+$/.test(k)) throw new UserError(`--filter key "${k}": use letters, digits, "_", "-" or "."`);
        where.push(`CAST(json_extract(d.metadata, '$."${k}"') AS TEXT) = ?`);
      }
      params.push(v);
    }
    const rows = this.db.query<{ id: number }, string[]>(`SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE ${where.join(" AND ")}`).all(...params);
    return new Set(rows.map((r) => r.id));
  }

  /**
   * Searches with a retriever. With `group: "doc"` the best chunk of each document stands for it,
   * so a long document cannot fill the list with its own chunks.
   */
  async search(name: string, query: string, opts: SearchOptions & { group?: "chunk" | "doc" }): Promise<Hit[]> {
    const r = getRetriever(name);
    if (r.index && !this.retrievers().includes(name)) {
      throw new UserError(`${this.path}: this KB keeps no "${name}" index (it has: ${this.retrievers().join(", ") || "none"}); rebuild with --retrievers including ${name}`);
    }
    if (opts.group !== "doc") return (await r.search(this.ctx, query, opts)).slice(0, opts.topK);
    const hits = await r.search(this.ctx, query, { ...opts, topK: opts.topK * 4 + 20 });
    const seen = new Set<string>();
    const out: Hit[] = [];
    for (const h of hits) {
      if (seen.has(h.docId)) continue;
      seen.add(h.docId);
      out.push(h);
      if (out.length === opts.topK) break;
    }
    return out;
  }
}
