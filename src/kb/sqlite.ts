import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
// Embedded in the compiled binary; a real file path in development.
import vecEmbedded from "sqlite-vec-linux-x64/vec0.so" with { type: "file" };

let vecPath: string | undefined;

/**
 * SQLite's own dlopen cannot read the compiled binary's virtual filesystem, so the extension is
 * copied out once, keyed by content hash, and written under a temporary name then renamed so two
 * processes starting together never see a half-written file.
 */
async function vecExtensionPath(): Promise<string> {
  if (vecPath) return vecPath;
  if (!vecEmbedded.startsWith("/$bunfs/")) return (vecPath = vecEmbedded);
  const bytes = await Bun.file(vecEmbedded).arrayBuffer();
  const hash = Bun.hash(bytes).toString(16);
  for (const base of [tmpdir(), join(homedir(), ".cache", "nanorag")]) {
    try {
      const dir = join(base, `nanorag-vec-${hash}`);
      const out = join(dir, "vec0.so");
      if (!existsSync(out)) {
        mkdirSync(dir, { recursive: true });
        const tmp = `${out}.${process.pid}.tmp`;
        await Bun.write(tmp, bytes);
        renameSync(tmp, out);
      }
      return (vecPath = out);
    } catch {
      // try the next location (e.g. a read-only or noexec /tmp)
    }
  }
  throw new Error("could not extract the sqlite-vec extension to a temporary folder");
}

/** Opens a SQLite database with sqlite-vec loaded. */
export async function openDatabase(path: string, opts: { readonly?: boolean; create?: boolean } = {}): Promise<Database> {
  const db = new Database(path, opts.readonly ? { readonly: true } : { create: opts.create ?? false, readwrite: true });
  db.loadExtension(await vecExtensionPath(), "sqlite3_vec_init");
  db.run("PRAGMA foreign_keys = ON");
  db.run("PRAGMA cache_size = -262144");
  return db;
}
