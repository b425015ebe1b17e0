/**
 * The answer-quality table: the model answers questions closed-book (no documents), with single-shot
 * retrieval (RAG), and with recursive retrieval (REFRAG: the model may write follow-up queries);
 * exact match and F1, citation accuracy, abstention accuracy and false-abstention rate, retrieval
 * recall and hops used, per question type.
 */
import type { Model } from "../engine/index.ts";
import type { QuestionRow } from "../data/schema.ts";
import { type AnswerRecord, type QualitySummary, summarizeByType } from "../rag/metrics.ts";
import type { TemplateTokenizer } from "../rag/template.ts";
import { type Answer, answerQuestion, type AnswerSettings, type Retrieve } from "../answer/answer.ts";
import { generationState } from "../train/generate.ts";

/** "closed" is the quality table's name for closed-book answering (mode "none" of src/answer). */
export type AnswerMode = "closed" | "rag" | "refrag";

export interface AnswerOptions extends AnswerSettings {
  mode: AnswerMode;
  retrieve?: Retrieve;
}

/** The answer settings a training config implies (contexts may grow to twice the trained length while answering). */
export function answerSettings(cfg: { topK: number; maxHops: number; topKPerHop: number; maxNewTokens: number; seqLen: number; readTwice: boolean }): AnswerSettings {
  return { topK: cfg.topK, maxHops: cfg.maxHops, topKPerHop: cfg.topKPerHop, maxNewTokens: cfg.maxNewTokens, maxLen: cfg.seqLen * 2, readTwice: cfg.readTwice };
}

/** What the metrics need from one answer to one question. */
export function answerRecord(q: QuestionRow, a: Answer): AnswerRecord {
  return {
    id: q.id,
    type: q.type,
    question: q.question,
    gold: q.answer,
    answerable: q.answerable,
    relevant_docs: q.relevant_docs,
    prediction: a.answer,
    citedIds: a.citations.map((c) => c.id),
    invalidCitations: a.invalid_citations.length,
    contextIds: a.docs.map((d) => d.id),
    hops: a.hops,
    contextText: a.contextText,
    timings: a.timings,
  };
}

/** Greedy answers to questions, one inference state reused across them. */
export async function answerQuestions(model: Model, tok: TemplateTokenizer, qs: QuestionRow[], o: AnswerOptions): Promise<AnswerRecord[]> {
  const out: AnswerRecord[] = [];
  const state = generationState(model, o.maxLen);
  try {
    for (const q of qs) {
      const a = await answerQuestion(model, tok, q.question, { ...o, mode: o.mode === "closed" ? "none" : o.mode, state });
      out.push(answerRecord(q, a));
    }
  } finally {
    state.free();
  }
  return out;
}

export interface QualityTable {
  modes: Partial<Record<AnswerMode, Record<string, QualitySummary>>>;
}

const f = (v: number | null | undefined, pct = false) => (v === null || v === undefined || Number.isNaN(v) ? "-" : pct ? v.toFixed(3) : v.toFixed(2));

/** A Markdown table: one row per (mode, question type). */
export function formatQuality(t: QualityTable): string {
  const lines = ["| mode | type | n | EM | F1 | citation | abstention | false abst. | recall | hops |", "|---|---|---|---|---|---|---|---|---|---|"];
  for (const [mode, byType] of Object.entries(t.modes)) {
    for (const [type, s] of Object.entries(byType!)) {
      lines.push(`| ${mode} | ${type} | ${s.n} | ${f(s.em, true)} | ${f(s.f1, true)} | ${f(s.citation, true)} | ${f(s.abstention, true)} | ${f(s.falseAbstention, true)} | ${f(s.recall, true)} | ${f(s.hops)} |`);
    }
  }
  return lines.join("\n");
}

export async function qualityTable(model: Model, tok: TemplateTokenizer, qs: QuestionRow[], modes: AnswerMode[], o: Omit<AnswerOptions, "mode">): Promise<{ table: QualityTable; records: Record<string, AnswerRecord[]> }> {
  const table: QualityTable = { modes: {} };
  const records: Record<string, AnswerRecord[]> = {};
  for (const mode of modes) {
    const rs = await answerQuestions(model, tok, qs, { ...o, mode });
    records[mode] = rs;
    table.modes[mode] = summarizeByType(rs);
  }
  return { table, records };
}
