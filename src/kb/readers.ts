import { readdirSync, statSync } from "node:fs";
import { basename, extname, join, relative } from "node:path";
import { InputError, UserError } from "../errors.ts";
import { jsonLines, readUtf8 } from "../io/jsonl.ts";

/** A document as it enters the KB, whatever file format it came from. */
export interface DocRecord {
  id: string;
  title: string;
  content: string;
  source: string;
  metadata: Record<string, unknown>;
}

export type InputFormat = "documents-jsonl" | "beir-corpus" | "hotpotqa" | "text-folder" | "text-file";

const TEXT_EXTENSIONS = new Set([".md", ".markdown", ".txt"]);

function str(file: string, line: number, row: Record<string, unknown>, field: string, required: boolean): string {
  const v = row[field];
  if (v === undefined || v === null) {
    if (required) throw new InputError(file, line, field, "missing required field");
    return "";
  }
  if (typeof v === "number") return String(v);
  if (typeof v !== "string") throw new InputError(file, line, field, `expected a string, got ${Array.isArray(v) ? "an array" : typeof v}`);
  return v;
}

function detectJsonl(first: Record<string, unknown>): InputFormat {
  if ("_id" in first) return "beir-corpus";
  if ("context" in first && "supporting_facts" in first) return "hotpotqa";
  return "documents-jsonl";
}

function readJsonlDocuments(file: string, text: string): { format: InputFormat; docs: DocRecord[] } {
  const docs: DocRecord[] = [];
  const seen = new Map<string, number>();
  let format: InputFormat | undefined;
  let index = 0;
  for (const { line, value: row } of jsonLines(file, text)) {
    format ??= detectJsonl(row);
    if (format === "hotpotqa") return { format, docs: hotpotParagraphs(file, text) };
    let doc: DocRecord;
    if (format === "beir-corpus") {
      doc = {
        id: str(file, line, row, "_id", true),
        title: str(file, line, row, "title", false),
        content: str(file, line, row, "text", true),
        source: "",
        metadata: objectField(file, line, row, "metadata"),
      };
    } else {
      doc = {
        id: row.id === undefined ? `doc_${index}` : str(file, line, row, "id", true),
        title: str(file, line, row, "title", false),
        content: str(file, line, row, "content", true),
        source: str(file, line, row, "source", false),
        metadata: objectField(file, line, row, "metadata"),
      };
    }
    index++;
    const idField = format === "beir-corpus" ? "_id" : "id";
    if (!doc.id.trim()) throw new InputError(file, line, idField, "empty id");
    if (!doc.content.trim()) throw new InputError(file, line, format === "beir-corpus" ? "text" : "content", "empty content");
    const prev = seen.get(doc.id);
    if (prev !== undefined) throw new InputError(file, line, idField, `duplicate id "${doc.id}" (first on line ${prev})`);
    seen.set(doc.id, line);
    docs.push(doc);
  }
  return { format: format ?? "documents-jsonl", docs };
}

function objectField(file: string, line: number, row: Record<string, unknown>, field: string): Record<string, unknown> {
  const v = row[field];
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new InputError(file, line, field, "expected a JSON object");
  return v as Record<string, unknown>;
}

/**
 * HotpotQA rows carry their candidate paragraphs in `context`; each paragraph becomes one document
 * whose id and title are the paragraph title, deduplicated across questions (first text wins).
 */
export function hotpotParagraphs(file: string, text: string): DocRecord[] {
  const byTitle = new Map<string, DocRecord>();
  for (const { line, value: row } of jsonLines(file, text)) {
    const ctx = row.context as { title?: unknown; sentences?: unknown } | undefined;
    if (!ctx || !Array.isArray(ctx.title) || !Array.isArray(ctx.sentences) || ctx.title.length !== ctx.sentences.length) {
      throw new InputError(file, line, "context", "expected {title: [...], sentences: [[...], ...]} of equal length");
    }
    ctx.title.forEach((title, i) => {
      const sentences = (ctx.sentences as unknown[])[i];
      if (typeof title !== "string" || !Array.isArray(sentences)) throw new InputError(file, line, `context.sentences[${i}]`, "expected a list of strings");
      if (byTitle.has(title)) return;
      byTitle.set(title, { id: title, title, content: sentences.join("").trim(), source: "hotpotqa", metadata: {} });
    });
  }
  return [...byTitle.values()].filter((d) => d.content.length > 0);
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith(".")) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (TEXT_EXTENSIONS.has(extname(name).toLowerCase())) out.push(p);
  }
  return out;
}

function textDocument(file: string, id: string): DocRecord {
  const content = readUtf8(file);
  if (!content.trim()) throw new InputError(file, null, "content", "empty file");
  const heading = /^#\s+(.+)$/m.exec(content);
  return { id, title: heading?.[1]?.trim() ?? basename(file, extname(file)), content, source: id, metadata: {} };
}

/**
 * Reads documents from a path, detecting the format from its content: a folder of .md/.txt files,
 * the seed's documents JSONL, a BEIR corpus.jsonl, HotpotQA rows, or a single text file.
 * Everything is validated before anything is written, so bad input never reaches the KB.
 */
export function readDocuments(path: string): { format: InputFormat; docs: DocRecord[] } {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UserError(`${path}: no such file or folder`);
  }
  if (st.isDirectory()) {
    const files = walk(path);
    if (files.length === 0) throw new InputError(path, null, null, "no .md or .txt files in this folder");
    return { format: "text-folder", docs: files.map((f) => textDocument(f, relative(path, f))) };
  }
  const text = readUtf8(path);
  if (!text.trim()) throw new InputError(path, null, null, "empty file");
  const firstLine = text.trimStart();
  if (firstLine.startsWith("{")) return readJsonlDocuments(path, text);
  if (/\.jsonl?$/i.test(path)) throw new InputError(path, 1, null, "malformed JSON (expected one JSON object per line)");
  return { format: "text-file", docs: [textDocument(path, basename(path))] };
}
