import { defineCommand } from "citty";
import { evaluateRetriever, loadQueries } from "../eval/retrieval.ts";
import { intFlag, kbArgs, keyValues, listFlag, printJson, withKb } from "./common.ts";

/** Prints rows of metrics as an aligned table, one retriever per row. */
export type MetricsRow = { retriever: string } & Record<string, string | number>;

export function metricsTable(rows: MetricsRow[]): string {
  const cols = Object.keys(rows[0] ?? {}).filter((c) => c !== "retriever");
  const header = ["retriever", ...cols];
  const cells = rows.map((r) => [r.retriever, ...cols.map((c) => String(r[c]))]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
  const fmt = (row: string[]) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
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

export default defineCommand({
  meta: { name: "eval", description: "Measure quality" },
  subCommands: { retrieval },
});
