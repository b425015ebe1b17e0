import type { Database } from "bun:sqlite";
import { InputError } from "../errors.ts";

/** Bumped whenever a table's shape changes; a KB of another version is refused, never guessed at. */
export const SCHEMA_VERSION = 1;

export const DEFAULT_CHUNK_SIZE = 400;
export const DEFAULT_CHUNK_OVERLAP = 50;

export function createSchema(db: Database): void {
  db.run(`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID`);
  db.run(`CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    hash TEXT NOT NULL,
    added_at TEXT NOT NULL
  )`);
  db.run(`CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    UNIQUE (doc_id, ordinal)
  )`);
}

/** Refuses a file that is not a nanorag KB, or one written by another schema version. */
export function checkSchema(db: Database, file: string): void {
  let row: { value: string } | null;
  try {
    row = db.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'schema_version'").get();
  } catch {
    throw new InputError(file, null, "meta", "not a nanorag knowledge base (no meta table)");
  }
  if (!row) throw new InputError(file, null, "schema_version", "not a nanorag knowledge base (no schema_version)");
  if (Number(row.value) !== SCHEMA_VERSION) {
    throw new InputError(file, null, "schema_version", `knowledge base has schema version ${row.value}, this nanorag reads version ${SCHEMA_VERSION}; rebuild it with \`nanorag kb build\``);
  }
}
