/**
 * `nanorag eval qa`: every model answers every question in every mode (closed-book, RAG, REFRAG)
 * through the Answerer, and each (model, mode) gets one row of answer-quality metrics (qaSummary in
 * src/rag/metrics.ts; definitions in docs/answering.md); with byType, also one row per question type.
 */
import type { AnswerMode } from "../answer/answer.ts";
import type { Answerer, AskOptions } from "../answer/answerer.ts";
import type { QuestionRow } from "../data/schema.ts";
import { progress } from "../log.ts";
import { type AnswerRecord, type QaSummary, qaSummary } from "../rag/metrics.ts";
import { answerRecord } from "./answers.ts";

export interface QaRow extends QaSummary {
  model: string;
  mode: AnswerMode;
  /** a question type's row (byType), or "all" beside them; absent without byType */
  type?: string;
}

export interface QaResult {
  rows: QaRow[];
  records: (AnswerRecord & { model: string; mode: AnswerMode })[];
}

/** Answers with each model in turn (`open` loads one, the caller's close frees it before the next). */
export async function evalQa(models: string[], open: (model: string) => Promise<Answerer>, qs: QuestionRow[], modes: AnswerMode[], ask: AskOptions, byType = false): Promise<QaResult> {
  const types = [...new Set(qs.map((q) => q.type))].sort();
  const out: QaResult = { rows: [], records: [] };
  const bar = progress("eval qa", models.length * modes.length * qs.length, "answers");
  let done = 0;
  for (const model of models) {
    const answerer = await open(model);
    try {
      for (const mode of modes) {
        const rs: AnswerRecord[] = [];
        for (const q of qs) {
          rs.push(answerRecord(q, await answerer.answer(q.question, { ...ask, mode })));
          bar.tick(++done);
        }
        if (byType) for (const type of types) out.rows.push({ model, mode, type, ...qaSummary(rs.filter((r) => r.type === type)) });
        out.rows.push({ model, mode, ...(byType ? { type: "all" } : {}), ...qaSummary(rs) });
        out.records.push(...rs.map((r) => ({ ...r, model, mode })));
      }
    } finally {
      answerer.close();
    }
  }
  bar.done();
  return out;
}

export type QaModeJson = QaSummary & { by_type?: Record<string, QaSummary> };

/** --json: per model, per mode, the summary keys (and by_type, per question type, when measured). */
export function qaJson(rows: QaRow[]): Record<string, Record<string, QaModeJson>> {
  const out: Record<string, Record<string, QaModeJson>> = {};
  for (const { model, mode, type, ...s } of rows) if (type === undefined || type === "all") (out[model] ??= {})[mode] = s;
  for (const { model, mode, type, ...s } of rows) if (type !== undefined && type !== "all") (out[model]![mode]!.by_type ??= {})[type] = s;
  return out;
}
