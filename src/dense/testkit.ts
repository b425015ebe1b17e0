import { Database } from "bun:sqlite";
import * as sqliteVec from "sqlite-vec";
import { rng } from "../data/random.ts";
import type { Chunk, PluginContext, Retriever } from "../plugin-api.ts";

/**
 * A minimal in-process KB for the dense/hybrid unit tests and the vector bench: the same tables the
 * KB uses (meta, documents, chunks; one chunk per document) and a PluginContext over them, with
 * writes in BEGIN IMMEDIATE/COMMIT transactions like the real host. No chunking, no CLI.
 */
export interface TestDoc {
  id: string;
  title?: string;
  content: string;
  source?: string;
  metadata?: Record<string, string>;
}

export class TestKb {
  readonly db: Database;
  readonly ctx: PluginContext;
  readonly retrievers = new Map<string, Retriever>();

  constructor(
    readonly path = ":memory:",
    readonly indexers: Retriever[] = [],
  ) {
    this.db = new Database(path, { create: true });
    sqliteVec.load(this.db);
    this.db.run("PRAGMA cache_size = -262144");
    this.db.run("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID");
    this.db.run(
      "CREATE TABLE IF NOT EXISTS documents (id TEXT PRIMARY KEY, title TEXT NOT NULL, content TEXT NOT NULL, source TEXT NOT NULL DEFAULT '', metadata TEXT NOT NULL DEFAULT '{}', hash TEXT NOT NULL DEFAULT '', added_at TEXT NOT NULL DEFAULT '')",
    );
    this.db.run(
      "CREATE TABLE IF NOT EXISTS chunks (id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL, text TEXT NOT NULL, start INTEGER NOT NULL DEFAULT 0, end INTEGER NOT NULL DEFAULT 0)",
    );
    for (const r of indexers) this.retrievers.set(r.name, r);
    const db = this.db;
    this.ctx = {
      db,
      kbPath: path,
      getMeta: (key) => (db.query("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | null)?.value,
      setMeta: (key, value) => {
        db.query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
      },
      filterChunkIds: (filter) => {
        if (!filter || Object.keys(filter).length === 0) return null;
        const where: string[] = [];
        const params: string[] = [];
        for (const [k, v] of Object.entries(filter)) {
          where.push(k === "source" ? "d.source = ?" : `CAST(json_extract(d.metadata, '$."${k}"') AS TEXT) = ?`);
          params.push(v);
        }
        const rows = db.query(`SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE ${where.join(" AND ")}`).all(...params) as { id: number }[];
        return new Set(rows.map((r) => r.id));
      },
      chunksById: (ids) => {
        const q = db.query("SELECT c.id, c.doc_id, c.ordinal, d.title, c.text FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id = ?");
        const out: Chunk[] = [];
        for (const id of ids) {
          const r = q.get(id) as { id: number; doc_id: string; ordinal: number; title: string; text: string } | null;
          if (r) out.push({ id: r.id, docId: r.doc_id, ordinal: r.ordinal, title: r.title, text: r.text });
        }
        return out;
      },
      retriever: (name) => {
        const r = this.retrievers.get(name);
        if (!r) throw new Error(`unknown retriever ${name}`);
        return r;
      },
    };
  }

  register(r: Retriever): this {
    this.retrievers.set(r.name, r);
    return this;
  }

  private async tx<T>(fn: () => Promise<T>): Promise<T> {
    this.db.run("BEGIN IMMEDIATE");
    try {
      const out = await fn();
      this.db.run("COMMIT");
      return out;
    } catch (e) {
      this.db.run("ROLLBACK");
      throw e;
    }
  }

  /** Adds documents (one chunk each) and calls every indexer's index hook, in one transaction. */
  add(docs: TestDoc[]): Promise<Chunk[]> {
    return this.tx(async () => {
      const chunks: Chunk[] = [];
      const insDoc = this.db.prepare("INSERT INTO documents (id, title, content, source, metadata) VALUES (?, ?, ?, ?, ?)");
      const insChunk = this.db.prepare("INSERT INTO chunks (doc_id, ordinal, text, start, end) VALUES (?, 0, ?, 0, ?) RETURNING id");
      for (const d of docs) {
        insDoc.run(d.id, d.title ?? "", d.content, d.source ?? "", JSON.stringify(d.metadata ?? {}));
        const { id } = insChunk.get(d.id, d.content, d.content.length) as { id: number };
        chunks.push({ id, docId: d.id, ordinal: 0, title: d.title ?? "", text: d.content });
      }
      for (const r of this.indexers) await r.index?.(this.ctx, chunks);
      return chunks;
    });
  }

  remove(docIds: string[]): Promise<void> {
    return this.tx(async () => {
      const ids: number[] = [];
      for (const d of docIds) for (const r of this.db.query("SELECT id FROM chunks WHERE doc_id = ?").all(d) as { id: number }[]) ids.push(r.id);
      for (const r of this.indexers) await r.remove?.(this.ctx, ids);
      for (const d of docIds) {
        this.db.query("DELETE FROM chunks WHERE doc_id = ?").run(d);
        this.db.query("DELETE FROM documents WHERE id = ?").run(d);
      }
    });
  }

  reindex(): Promise<void> {
    return this.tx(async () => {
      const ids = (this.db.query("SELECT id FROM chunks ORDER BY id").all() as { id: number }[]).map((r) => r.id);
      const chunks = this.ctx.chunksById(ids);
      for (const r of this.indexers) await r.reindex?.(this.ctx, chunks);
    });
  }

  count(table: string): number {
    return (this.db.query(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  }

  close(): void {
    this.db.close();
  }
}

/** n random unit vectors of dim (uniform components, normalised), the same for a seed. */
export function unitVectors(n: number, dim: number, seed: number): Float32Array[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => {
    const v = Float32Array.from({ length: dim }, () => r() - 0.5);
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  });
}
