import { writeFileSync } from "node:fs";
import { defineCommand } from "citty";
import { readQuestions } from "../data/schema.ts";
import { UserError } from "../errors.ts";
import { evalQa, qaJson } from "../eval/qa.ts";
import { qaHtml } from "../eval/qa-html.ts";
import { writeJsonl } from "../io/jsonl.ts";
import { askOptions, modelArgs, modesFlag, openAnswerer, repeatedFlag, retrievalArgs } from "./answering.ts";
import { evaluateRetriever, loadQueries } from "../eval/retrieval.ts";
import { intFlag, kbArgs, listFlag, printJson, withKb } from "./common.ts";
import { keyValues } from "../text.ts";

/** Prints rows of metrics as an aligned table, one retriever per row. */
export type MetricsRow = { retriever: string } & Record<string, string | number>;

/** `leading` columns are text, left-aligned; the rest right-aligned, null printed as "-". */
export function metricsTable<Row extends object>(rows: Row[], leading: string[] = ["retriever"]): string {
  const cols = Object.keys(rows[0] ?? {}).filter((c) => !leading.includes(c));
  const header = [...leading, ...cols];
  const cells = rows.map((r) => header.map((c) => String((r as Record<string, unknown>)[c] ?? "-")));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
  const fmt = (row: string[]) => row.map((c, i) => (i < leading.length ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [fmt(header), widths.map((w) => "-".repeat(w)).join("  "), ...cells.map(fmt)].join("\n");
}

const retrieval = defineCommand({
  meta: { name: "retrieval", description: "Retrieval quality (nDCG, recall, MRR, MAP, precision) of one or more retrievers" },
  args: {
    ...kbArgs,
    queries: { type: "string", description: "Queries: BEIR queries.jsonl, the seed's queries JSONL, or HotpotQA rows", required: true, valueHint: "FILE" },
    qrels: { type: "string", description: "BEIR/TREC qrels TSV (for BEIR queries)", valueHint: "FILE" },
    retriever: { type: "string", alias: "r", description: "Retriever name(s), comma-separated", default: "bm25" },
    k: { type: "string", description: "Cut-off for nDCG, MRR and precision", default: "10" },
    filter: { type: "string", description: "Metadata filter, e.g. source=web" },
    opt: { type: "string", description: "Retriever options, e.g. components=bm25,dense" },
  },
  async run({ args }) {
    await withKb(args, false, async (kb) => {
      const set = loadQueries(args.queries, args.qrels);
      const k = intFlag("k", args.k, 10);
      const rows: MetricsRow[] = [];
      for (const name of listFlag(args.retriever) ?? ["bm25"]) {
        rows.push({ retriever: name, ...(await evaluateRetriever(kb, name, set, k, { filter: keyValues("filter", args.filter), options: keyValues("opt", args.opt) })) });
      }
      if (args.json) printJson(rows.length === 1 ? rows[0] : rows);
      else process.stdout.write(`${metricsTable(rows)}\n`);
    });
  },
});

const qa = defineCommand({
  meta: { name: "qa", description: "Answer quality of one or more models (repeat --model) closed-book, with RAG and with REFRAG: EM, F1, citations, groundedness, abstention, hops, latency" },
  args: {
    ...modelArgs,
    ...retrievalArgs,
    questions: { type: "string", description: "Questions JSONL with gold answers and relevant_docs (nanorag prepare's format, or the seed's queries)", required: true, valueHint: "FILE" },
    modes: { type: "string", description: "Comma-separated answer modes: none (closed-book), rag, refrag", default: "none,rag,refrag" },
    html: { type: "string", description: "Also write a self-contained HTML report with charts", valueHint: "FILE" },
    records: { type: "string", description: "Also write every answer with its scores' inputs as JSONL", valueHint: "FILE" },
    "by-type": { type: "boolean", description: "Also a row per question type (single, bridge, unanswerable, ...): a type column, and by_type in --json" },
    json: { type: "boolean", description: "Print {models: {MODEL: {MODE: metrics}}} (and modes: {MODE: metrics} for one model) as JSON" },
  },
  async run({ args, rawArgs }) {
    const models = repeatedFlag(rawArgs, "model");
    const modes = modesFlag(args.modes);
    const qs = readQuestions(args.questions);
    if (qs.length === 0) throw new UserError(`${args.questions}: no questions`);
    const byType = Boolean(args["by-type"]);
    const { rows, records } = await evalQa(models, (m) => openAnswerer(args, m), qs, modes, askOptions(args), byType);
    if (args.records) writeJsonl(args.records, records);
    const overall = rows.filter((r) => r.type === undefined || r.type === "all");
    if (args.html) writeFileSync(args.html, qaHtml(overall, `nanorag eval qa: ${args.questions}`));
    const byModel = qaJson(rows);
    if (args.json) printJson(models.length === 1 ? { models: byModel, modes: byModel[models[0]!] } : { models: byModel });
    else process.stdout.write(`${metricsTable(rows, byType ? ["model", "mode", "type"] : ["model", "mode"])}\n`);
  },
});

export default defineCommand({
  meta: { name: "eval", description: "Measure quality" },
  subCommands: { retrieval, qa },
});
