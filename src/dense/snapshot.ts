import type { Database } from "bun:sqlite";

/**
 * A value derived from a KB's tables (the in-memory vectors or sign bits), kept per open database
 * until this process invalidates it (it wrote vectors) or another connection changed the file
 * (SQLite's PRAGMA data_version moves then).
 */
export class Snapshots<T> {
  private readonly cache = new WeakMap<Database, { version: number; value: T }>();

  get(db: Database, load: () => T): T {
    const version = (db.query("PRAGMA data_version").get() as { data_version: number }).data_version;
    const hit = this.cache.get(db);
    if (hit && hit.version === version) return hit.value;
    const value = load();
    this.cache.set(db, { version, value });
    return value;
  }

  invalidate(db: Database): void {
    this.cache.delete(db);
  }
}
