import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ROOT = join(import.meta.dir, "..");
export const BUN = join(ROOT, "node_modules/.bin/bun");
export const SHARED_DATA = join(ROOT, "../shared/data");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI exactly as a user would (`nanorag ARGS`), through the TypeScript entry point or a given binary. */
export function cli(args: string[], opts: { cwd?: string; env?: Record<string, string>; bin?: string } = {}): CliResult {
  const cmd = opts.bin ? [opts.bin, ...args] : [BUN, join(ROOT, "src/cli/main.ts"), ...args];
  const p = Bun.spawnSync(cmd, { cwd: opts.cwd ?? ROOT, env: { ...process.env, NO_COLOR: "1", ...opts.env }, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

const made: string[] = [];

/** A fresh folder under the system's temp dir, removed when the whole run ends (tests/cleanup.ts). */
export function tempDir(prefix = "nanorag-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Removes every folder tempDir made in this process. */
export function removeTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function writeJsonl(path: string, rows: unknown[]): string {
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return path;
}

export function sha256(path: string): string {
  return new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex");
}

/** A few documents in the seed's documents JSONL format. */
export const PETS = [
  { id: "cats", title: "Cats", content: "Cats are small domesticated carnivorous mammals that purr and hunt mice.", source: "web", metadata: { topic: "pets" } },
  { id: "dogs", title: "Dogs", content: "Dogs are loyal companions descended from wolves; they bark at strangers.", source: "book", metadata: { topic: "pets" } },
  { id: "rust", title: "Rust", content: "Rust is a systems programming language focused on memory safety without garbage collection.", source: "web", metadata: { topic: "code" } },
  { id: "mamba", title: "Mamba", content: "Mamba is a selective state space model; it scans sequences in linear time.", source: "paper", metadata: { topic: "ml" } },
];

/** A user's retriever: ranks chunks by how many query words they contain, via the host's tokenizer. */
export const WORD_COUNT_PLUGIN = `import { definePlugin, rankHits, tokenize, type Hit } from "nanorag";
import Fuse from "fuse.js";

export default definePlugin({
  name: "wordcount",
  description: "counts query words",
  search(ctx, query, opts) {
    if (typeof Fuse !== "function") throw new Error("fuse.js not lent by the host");
    const words = new Set(tokenize(query));
    const rows = ctx.db.query("SELECT c.id, c.doc_id, c.text, d.title FROM chunks c JOIN documents d ON d.id = c.doc_id").all() as any[];
    const hits: Hit[] = rows.map((r) => ({ chunkId: r.id, docId: r.doc_id, title: r.title, text: r.text, score: tokenize(r.text).filter((w) => words.has(w)).length }));
    return rankHits(hits).slice(0, opts.topK);
  },
});
`;
