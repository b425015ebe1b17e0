import { defineCommand } from "citty";
import { UserError } from "../errors.ts";
import { Kb } from "../kb/kb.ts";
import { readDocuments } from "../kb/readers.ts";
import { DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE } from "../kb/schema.ts";
import { requestEmbedder } from "../dense/index.ts";
import { log } from "../log.ts";
import { loadPlugins, retrieverNames } from "../retrieval/host.ts";
import { intFlag, kbArgs, listFlag, printJson, withKb } from "./common.ts";
import { keyValues } from "../text.ts";

const inputArg = { input: { type: "string", description: "Documents: a JSONL file (seed or BEIR format), HotpotQA rows, or a folder of .md/.txt", required: true, valueHint: "PATH" } } as const;

// dense: which embedder builds/extends/refits the vectors (e.g. "lsa", "lsa:dim=128", "http:url=http://host/v1,model=m", "model:checkpoint=runs/main/rag").
const embedderArg = { embedder: { type: "string", description: 'Dense embedder: lsa (default), lsa:dim=N, http:url=URL,model=NAME[,api_key_env=VAR], or model:checkpoint=DIR', valueHint: "SPEC" } } as const;

function snippet(text: string, n = 160): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > n ? `${flat.slice(0, n - 1)}…` : flat;
}

const build = defineCommand({
  meta: { name: "build", description: "Build a new knowledge base from documents (replaces FILE atomically)" },
  args: {
    ...inputArg,
    ...kbArgs,
    "chunk-size": { type: "string", description: `Words per chunk (default ${DEFAULT_CHUNK_SIZE})` },
    "chunk-overlap": { type: "string", description: `Words shared by consecutive chunks (default ${DEFAULT_CHUNK_OVERLAP})` },
    retrievers: { type: "string", description: "Comma-separated retrievers to index (default: all that keep an index)" },
    k1: { type: "string", description: "BM25 k1 (default 0.9)" },
    b: { type: "string", description: "BM25 b (default 0.4)" },
    ...embedderArg,
  },
  async run({ args }) {
    await loadPlugins(args.plugins);
    requestEmbedder(args.embedder ?? null);
    const { format, docs } = readDocuments(args.input);
    log.info(`${args.input}: ${docs.length} documents (${format})`);
    const settings: Record<string, string> = {};
    for (const k of ["k1", "b"] as const) {
      if (args[k] === undefined) continue;
      const v = Number(args[k]);
      if (!Number.isFinite(v) || v < 0) throw new UserError(`--${k} must be a non-negative number, got "${args[k]}"`);
      settings[`bm25.${k}`] = String(v);
    }
    const t0 = performance.now();
    const { kb, report } = await Kb.build(args.kb, docs, {
      chunkSize: intFlag("chunk-size", args["chunk-size"], DEFAULT_CHUNK_SIZE),
      chunkOverlap: intFlag("chunk-overlap", args["chunk-overlap"], DEFAULT_CHUNK_OVERLAP, 0),
      retrievers: listFlag(args.retrievers),
      settings,
    });
    const secs = (performance.now() - t0) / 1000;
    const result = { kb: args.kb, format, documents: report.added, chunks: report.chunks, retrievers: kb.retrievers(), seconds: Number(secs.toFixed(3)) };
    kb.close();
    log.success(`built ${args.kb}: ${result.documents} documents, ${result.chunks} chunks in ${secs.toFixed(2)}s (${Math.round(result.chunks / secs)} chunks/s)`);
    if (args.json) printJson(result);
  },
});

const add = defineCommand({
  meta: { name: "add", description: "Add or update documents (unchanged ones are skipped by content hash)" },
  args: { ...inputArg, ...kbArgs, ...embedderArg },
  async run({ args }) {
    requestEmbedder(args.embedder ?? null);
    const { docs } = readDocuments(args.input);
    await withKb(args, true, async (kb) => {
      const report = await kb.write(docs, []);
      log.success(`${args.kb}: ${report.added} added, ${report.updated} updated, ${report.unchanged} unchanged (${report.chunks} chunks indexed)`);
      if (args.json) printJson(report);
    });
  },
});

const remove = defineCommand({
  meta: { name: "remove", description: "Remove documents by id" },
  args: { ...kbArgs, id: { type: "string", description: "Document id(s), comma-separated", required: true } },
  async run({ args }) {
    await withKb(args, true, async (kb) => {
      const report = await kb.write([], listFlag(args.id) ?? []);
      log.success(`${args.kb}: removed ${report.removed} documents`);
      if (args.json) printJson(report);
    });
  },
});

const search = defineCommand({
  meta: { name: "search", description: "Search a knowledge base" },
  args: {
    query: { type: "positional", description: "The query", required: true },
    ...kbArgs,
    retriever: { type: "string", alias: "r", description: "Retriever name (see `kb stats`)", default: "bm25" },
    "top-k": { type: "string", alias: "k", description: "Number of results", default: "5" },
    group: { type: "enum", options: ["chunk", "doc"], description: "Rank chunks, or documents by their best chunk", default: "chunk" },
    filter: { type: "string", description: "Metadata filter, e.g. source=web,topic=AI" },
    opt: { type: "string", description: "Retriever options, e.g. components=bm25+dense,method=cc" },
    ...embedderArg,
    explain: { type: "boolean", description: "Show each fused component's rank and score (hybrid)" },
  },
  async run({ args }) {
    requestEmbedder(args.embedder ?? null);
    await withKb(args, false, async (kb) => {
      const topK = intFlag("top-k", args["top-k"], 5);
      const hits = await kb.search(args.retriever, args.query, { topK, group: args.group as "chunk" | "doc", filter: keyValues("filter", args.filter), options: keyValues("opt", args.opt) });
      if (args.json) {
        printJson({ query: args.query, retriever: args.retriever, hits: hits.map((h, i) => ({ rank: i + 1, ...h, text: undefined, snippet: snippet(h.text) })) });
        return;
      }
      if (hits.length === 0) log.info("no results");
      for (const [i, h] of hits.entries()) {
        process.stdout.write(`${i + 1}. ${h.score.toFixed(4)}  ${h.title || "(untitled)"}  [${h.docId} #${h.chunkId}]\n    ${snippet(h.text)}\n`);
        if (args.explain && h.explain) {
          const parts = Object.entries(h.explain).map(([name, e]) => `${name} #${e.rank} (${Number(e.score.toPrecision(4))})`);
          process.stdout.write(`    explain: ${parts.join(", ")}\n`);
        }
      }
    });
  },
});

const stats = defineCommand({
  meta: { name: "stats", description: "Counts and settings of a knowledge base" },
  args: kbArgs,
  async run({ args }) {
    await withKb(args, false, async (kb) => {
      const meta = Object.fromEntries(kb.db.query<{ key: string; value: string }, []>("SELECT key, value FROM meta ORDER BY key").all().map((r) => [r.key, r.value]));
      const result = { kb: args.kb, documents: kb.count("documents"), chunks: kb.count("chunks"), indexed: kb.retrievers(), available: retrieverNames(), meta };
      if (args.json) printJson(result);
      else {
        process.stdout.write(`documents  ${result.documents}\nchunks     ${result.chunks}\nindexed    ${result.indexed.join(", ")}\navailable  ${result.available.join(", ")}\n`);
        for (const [k, v] of Object.entries(meta)) process.stdout.write(`meta.${k}  ${v}\n`);
      }
    });
  },
});

const exportCmd = defineCommand({
  meta: { name: "export", description: "Write every document, in insertion order, as documents JSONL on stdout (the format `kb build` reads)" },
  args: { kb: kbArgs.kb, plugins: kbArgs.plugins },
  async run({ args }) {
    await withKb(args, false, async (kb) => {
      const q = kb.db.query<{ id: string; title: string; content: string; source: string; metadata: string }, []>("SELECT id, title, content, source, metadata FROM documents ORDER BY rowid");
      for (const r of q.iterate()) process.stdout.write(`${JSON.stringify({ ...r, metadata: JSON.parse(r.metadata) })}\n`);
    });
  },
});

const doctor = defineCommand({
  meta: { name: "doctor", description: "Check schema, counts and index consistency" },
  args: kbArgs,
  async run({ args }) {
    await withKb(args, false, async (kb) => {
      const problems: string[] = [];
      const integrity = kb.db.query<{ integrity_check: string }, []>("PRAGMA integrity_check").all().map((r) => r.integrity_check);
      if (integrity.join() !== "ok") problems.push(...integrity.map((m) => `sqlite: ${m}`));
      const orphans = kb.db.query<{ n: number }, []>("SELECT count(*) AS n FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)").get()!.n;
      if (orphans) problems.push(`${orphans} chunks belong to no document`);
      const chunkless = kb.db.query<{ n: number }, []>("SELECT count(*) AS n FROM documents WHERE id NOT IN (SELECT doc_id FROM chunks)").get()!.n;
      if (chunkless) problems.push(`${chunkless} documents have no chunks`);
      for (const name of kb.retrievers()) {
        try {
          problems.push(...((await kb.ctx.retriever(name).doctor?.(kb.ctx)) ?? []));
        } catch (e) {
          problems.push(`${name}: ${(e as Error).message}`);
        }
      }
      const result = { kb: args.kb, ok: problems.length === 0, documents: kb.count("documents"), chunks: kb.count("chunks"), problems };
      if (args.json) printJson(result);
      else if (result.ok) log.success(`${args.kb}: healthy (${result.documents} documents, ${result.chunks} chunks)`);
      else for (const p of problems) log.error(p);
      if (!result.ok) process.exitCode = 1;
    });
  },
});

const reindex = defineCommand({
  meta: { name: "reindex", description: "Rebuild every retriever index from the stored chunks (refits the lsa embedder)" },
  args: { ...kbArgs, ...embedderArg },
  async run({ args }) {
    requestEmbedder(args.embedder ?? null);
    await withKb(args, true, async (kb) => {
      const t0 = performance.now();
      await kb.reindex();
      const result = { kb: args.kb, retrievers: kb.retrievers(), chunks: kb.count("chunks"), seconds: Number(((performance.now() - t0) / 1000).toFixed(3)) };
      log.success(`${args.kb}: reindexed ${result.retrievers.join(", ")} over ${result.chunks} chunks in ${result.seconds}s`);
      if (args.json) printJson(result);
    });
  },
});

export default defineCommand({
  meta: { name: "kb", description: "Knowledge-base commands" },
  subCommands: { build, add, remove, search, stats, export: exportCmd, doctor, reindex },
});
