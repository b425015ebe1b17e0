/**
 * Tasks turn questions into conversations for the chat template (src/rag/template.ts).
 *
 * - StaticRagTask: documents pre-retrieved (or given) per question.
 * - DynamicRagTask: retrieves per question through any retriever, with a cache keyed by
 *   (retriever, topK, query) so that every epoch sees the same documents.
 * - MultiHopTask: a trajectory; the assistant writes a follow-up query for each hop whose document
 *   is not yet in context, the runtime answers with documents, and the answer cites them.
 * - MixtureTask: tasks mixed by ratios on a seeded schedule.
 *
 * Each example's random choices (gold placement, distractors, abstention) come from a PRNG seeded by
 * (seed, epoch, index), so a task is a pure function of its inputs. Distractor documents and "the
 * documents do not say" examples teach the model to abstain.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { Hit } from "../plugin-api.ts";
import { prng, shuffle } from "../data/random.ts";
import { ABSTAIN, type QuestionRow } from "../data/schema.ts";
import { BudgetError, type Conversation, type Message, type RagDoc, type Rendered, type RenderOptions, render, type TemplateTokenizer } from "./template.ts";

export { ABSTAIN, prng, shuffle };

/** Any retriever, reduced to what tasks need. `openKb(path)` + `kb.search(name, q, {topK})` fits. */
export type SearchFn = (query: string, topK: number) => Promise<Hit[]>;

/**
 * A system prompt to pass as `system` if wanted. Tasks add none by default: the special tokens
 * already say what each part is, and a fixed prompt costs ~30 tokens of every example.
 */
export const DEFAULT_SYSTEM = "Answer the question from the documents and cite them as [n]. If the documents do not contain the answer, say: " + ABSTAIN;

function hitsToDocs(hits: Hit[], topK: number): RagDoc[] {
  // Results are chunks; keep each document once, at its best rank.
  const seen = new Set<string>();
  const docs: RagDoc[] = [];
  for (const h of hits) {
    if (seen.has(h.docId)) continue;
    seen.add(h.docId);
    docs.push({ id: h.docId, title: h.title, text: h.text });
    if (docs.length >= topK) break;
  }
  return docs;
}

/**
 * Retrieval results cached by (retriever, topK, query). With a path the cache persists as JSONL, so
 * a second run (or a resumed training) reads the same documents without searching again.
 */
export class RetrievalCache {
  private readonly map = new Map<string, RagDoc[]>();
  private dirty = false;
  hits = 0;
  misses = 0;

  constructor(readonly path?: string) {
    if (path && existsSync(path)) {
      for (const line of readFileSync(path, "utf8").split("\n")) {
        if (!line.trim()) continue;
        const r = JSON.parse(line) as { key: string; docs: RagDoc[] };
        this.map.set(r.key, r.docs);
      }
    }
  }

  static key(retriever: string, topK: number, query: string): string {
    return JSON.stringify([retriever, topK, query]);
  }

  get size(): number {
    return this.map.size;
  }

  async search(retriever: string, search: SearchFn, query: string, topK: number): Promise<RagDoc[]> {
    const key = RetrievalCache.key(retriever, topK, query);
    const hit = this.map.get(key);
    if (hit) {
      this.hits++;
      return hit;
    }
    this.misses++;
    // Ask for extra chunks: several may belong to one document.
    const docs = hitsToDocs(await search(query, topK * 3), topK);
    this.map.set(key, docs);
    this.dirty = true;
    return docs;
  }

  save(): void {
    if (!this.path || !this.dirty) return;
    writeFileSync(this.path, [...this.map].map(([key, docs]) => JSON.stringify({ key, docs })).join("\n") + "\n");
    this.dirty = false;
  }
}

export interface Task {
  readonly name: string;
  readonly size: number;
  /** The conversation for example `index` in `epoch` (deterministic). */
  get(index: number, epoch?: number): Promise<Conversation>;
}

export interface AugmentOptions {
  seed?: number;
  /** Put the gold documents in context when retrieval missed them (answerable questions). Default true. */
  ensureGold?: boolean;
  /** Random extra documents from the pool, placed at random ranks. Default 0. */
  distractors?: number;
  /** Fraction of answerable questions whose gold documents are removed, answered with ABSTAIN. Default 0. */
  abstainRate?: number;
  /** Documents by id: gold documents for ensureGold, and the distractor pool. */
  docs?: ReadonlyMap<string, RagDoc>;
  /** System message (default none). */
  system?: string | null;
}

/** "{answer} [n][m]." citing each gold document present; ABSTAIN when none is. */
export function answerWithCitations(q: QuestionRow, docs: RagDoc[]): string {
  if (!q.answerable) return ABSTAIN;
  const nums = q.relevant_docs.map((id) => docs.findIndex((d) => d.id === id) + 1).filter((n) => n > 0);
  if (nums.length === 0) return ABSTAIN;
  const a = q.answer.trim();
  const cites = [...new Set(nums)].sort((x, y) => x - y).map((n) => `[${n}]`).join("");
  const end = /[.!?]$/.test(a) ? a.slice(-1) : ".";
  return `${/[.!?]$/.test(a) ? a.slice(0, -1) : a} ${cites}${end}`;
}

/** Applies gold placement, abstention and distractors to retrieved documents. Returns the context and whether it still holds the answer. */
export function augment(q: QuestionRow, retrieved: RagDoc[], topK: number, opts: AugmentOptions, rand: () => number): RagDoc[] {
  const gold = new Set(q.relevant_docs);
  let docs = [...retrieved];
  const abstain = q.answerable && (opts.abstainRate ?? 0) > 0 && rand() < opts.abstainRate!;
  if (abstain) docs = docs.filter((d) => !gold.has(d.id));
  else if (q.answerable && (opts.ensureGold ?? true) && opts.docs) {
    for (const id of q.relevant_docs) {
      if (docs.some((d) => d.id === id)) continue;
      const g = opts.docs.get(id);
      if (!g) continue;
      // Replace the lowest-ranked non-gold document, then move gold to a random rank so the model
      // cannot learn "the answer is always in [1]".
      const victim = docs.map((d, i) => [d, i] as const).reverse().find(([d]) => !gold.has(d.id));
      if (docs.length >= topK && victim) docs.splice(victim[1], 1);
      docs.splice(Math.floor(rand() * (docs.length + 1)), 0, g);
    }
  }
  const n = opts.distractors ?? 0;
  if (n > 0 && opts.docs && opts.docs.size > 0) {
    const pool = [...opts.docs.values()];
    for (let k = 0, tries = 0; k < n && tries < n * 10; tries++) {
      const d = pool[Math.floor(rand() * pool.length)]!;
      if (gold.has(d.id) || docs.some((x) => x.id === d.id)) continue;
      docs.splice(Math.floor(rand() * (docs.length + 1)), 0, d);
      k++;
    }
  }
  return docs;
}

function qaConversation(q: QuestionRow, docs: RagDoc[], system: string | null | undefined): Conversation {
  const messages: Message[] = [];
  const sys = system ?? null;
  if (sys) messages.push({ role: "system", content: sys });
  messages.push({ role: "user", content: q.question }, { role: "docs", docs }, { role: "assistant", content: answerWithCitations(q, docs) });
  return { messages };
}

/** Documents given with each question (pre-retrieved, or gold plus distractors). */
export class StaticRagTask implements Task {
  readonly name: string;
  constructor(
    readonly examples: { question: QuestionRow; docs: RagDoc[] }[],
    readonly opts: AugmentOptions & { name?: string; topK?: number } = {},
  ) {
    this.name = opts.name ?? "static";
  }
  get size() {
    return this.examples.length;
  }
  async get(index: number, epoch = 0): Promise<Conversation> {
    const ex = this.examples[index % this.examples.length]!;
    const rand = prng(this.opts.seed ?? 0, epoch, index);
    const docs = augment(ex.question, ex.docs, this.opts.topK ?? ex.docs.length, this.opts, rand);
    return qaConversation(ex.question, docs, this.opts.system);
  }
}

/** Retrieves per question through `search`, cached by (retriever, topK, query). */
export class DynamicRagTask implements Task {
  readonly name: string;
  readonly cache: RetrievalCache;
  constructor(
    readonly questions: QuestionRow[],
    readonly search: SearchFn,
    readonly opts: AugmentOptions & { retriever: string; topK: number; cache?: RetrievalCache; name?: string },
  ) {
    this.name = opts.name ?? `rag:${opts.retriever}`;
    this.cache = opts.cache ?? new RetrievalCache();
  }
  get size() {
    return this.questions.length;
  }
  async get(index: number, epoch = 0): Promise<Conversation> {
    const q = this.questions[index % this.questions.length]!;
    const retrieved = await this.cache.search(this.opts.retriever, this.search, q.question, this.opts.topK);
    const docs = augment(q, retrieved, this.opts.topK, this.opts, prng(this.opts.seed ?? 0, epoch, index));
    return qaConversation(q, docs, this.opts.system);
  }
}

/**
 * Multi-hop trajectories: retrieve for the question; for each hop whose gold document is not in
 * context yet, the assistant writes the hop's query and the runtime answers with documents; then the
 * answer cites every gold document. Questions without hops become single-hop conversations.
 */
export class MultiHopTask implements Task {
  readonly name: string;
  readonly cache: RetrievalCache;
  constructor(
    readonly questions: QuestionRow[],
    readonly search: SearchFn,
    readonly opts: {
      retriever: string;
      topK: number;
      cache?: RetrievalCache;
      docs?: ReadonlyMap<string, RagDoc>;
      seed?: number;
      system?: string | null;
      name?: string;
      /** rewrites a finished trajectory (e.g. counterfactual names), with the example's own random stream */
      augment?: (conv: Conversation, q: QuestionRow, rand: () => number) => Conversation;
    },
  ) {
    this.name = opts.name ?? `multihop:${opts.retriever}`;
    this.cache = opts.cache ?? new RetrievalCache();
  }
  get size() {
    return this.questions.length;
  }
  async get(index: number, epoch = 0): Promise<Conversation> {
    const q = this.questions[index % this.questions.length]!;
    const rand = prng(this.opts.seed ?? 0, epoch, index, 7);
    const { retriever, topK } = this.opts;
    const first = await this.cache.search(retriever, this.search, q.question, topK);
    const seen = new Set(first.map((d) => d.id));
    const all = [...first];
    const parts: Extract<Message, { role: "assistant" }>["content"] = [];
    for (const hop of q.hops ?? []) {
      if (seen.has(hop.doc)) continue;
      let docs = (await this.cache.search(retriever, this.search, hop.query, topK)).filter((d) => !seen.has(d.id));
      if (!docs.some((d) => d.id === hop.doc) && this.opts.docs?.has(hop.doc)) {
        if (docs.length >= topK) docs = docs.slice(0, topK - 1);
        docs.splice(Math.floor(rand() * (docs.length + 1)), 0, this.opts.docs.get(hop.doc)!);
      }
      parts.push({ type: "query", text: hop.query }, { type: "docs", docs });
      for (const d of docs) seen.add(d.id);
      all.push(...docs);
    }
    parts.push({ type: "text", text: answerWithCitations(q, all) });
    const messages: Message[] = [];
    const sys = this.opts.system ?? null;
    if (sys) messages.push({ role: "system", content: sys });
    const content = parts.length === 1 && parts[0]!.type === "text" ? parts[0]!.text : parts;
    messages.push({ role: "user", content: q.question }, { role: "docs", docs: first }, { role: "assistant", content });
    return this.opts.augment ? this.opts.augment({ messages }, q, rand) : { messages };
  }
}

/**
 * Tasks mixed by ratio: `size` examples (default: the sum of the parts' sizes), task i getting a
 * share proportional to its ratio, each task's examples cycled in a seeded order, the whole schedule
 * shuffled by the seed.
 */
export class MixtureTask implements Task {
  readonly name: string;
  private readonly schedule: [number, number][] = [];
  constructor(
    readonly parts: { task: Task; ratio: number }[],
    opts: { size?: number; seed?: number } = {},
  ) {
    if (parts.length === 0 || parts.some((p) => !(p.ratio >= 0)) || parts.every((p) => p.ratio === 0)) throw new Error("MixtureTask needs parts with non-negative ratios, not all zero");
    this.name = `mix(${parts.map((p) => `${p.task.name}:${p.ratio}`).join(",")})`;
    const size = opts.size ?? parts.reduce((a, p) => a + p.task.size, 0);
    const total = parts.reduce((a, p) => a + p.ratio, 0);
    const rand = prng(opts.seed ?? 0, 0x3141);
    // Largest-remainder apportionment keeps the counts exact.
    const raw = parts.map((p) => (size * p.ratio) / total);
    const counts = raw.map(Math.floor);
    let left = size - counts.reduce((a, b) => a + b, 0);
    const order = raw.map((r, i) => [r - Math.floor(r), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    for (const [, i] of order) if (left-- > 0) counts[i]!++;
    parts.forEach((p, t) => {
      const perm = shuffle(Array.from({ length: p.task.size }, (_, i) => i), rand);
      for (let k = 0; k < counts[t]! && perm.length > 0; k++) this.schedule.push([t, perm[k % perm.length]!]);
    });
    shuffle(this.schedule, rand);
  }
  get size() {
    return this.schedule.length;
  }
  /** Which task and example index `index` maps to. */
  at(index: number): { task: Task; index: number } {
    const [t, i] = this.schedule[index % this.schedule.length]!;
    return { task: this.parts[t]!.task, index: i };
  }
  get(index: number, epoch = 0): Promise<Conversation> {
    const { task, index: i } = this.at(index);
    return task.get(i, epoch);
  }
}

export interface RenderStats {
  rendered: number;
  overBudget: number;
  tokens: number;
  trainedTokens: number;
  droppedDocs: number;
}

/**
 * Renders a task's examples for training. Conversations that cannot fit the budget are skipped and
 * counted in the stats (reported, never silently cut).
 */
export async function* renderTask(
  task: Task,
  tok: TemplateTokenizer,
  opts: RenderOptions & { epoch?: number; start?: number; count?: number; stats?: RenderStats } = {},
): AsyncGenerator<Rendered & { index: number }> {
  const stats = opts.stats ?? { rendered: 0, overBudget: 0, tokens: 0, trainedTokens: 0, droppedDocs: 0 };
  const end = Math.min(task.size, (opts.start ?? 0) + (opts.count ?? task.size));
  for (let i = opts.start ?? 0; i < end; i++) {
    const conv = await task.get(i, opts.epoch ?? 0);
    let r: Rendered;
    try {
      r = render(tok, conv, opts);
    } catch (e) {
      if (e instanceof BudgetError) {
        stats.overBudget++;
        continue;
      }
      throw e;
    }
    stats.rendered++;
    stats.tokens += r.ids.length;
    for (const w of r.weights) if (w !== 0) stats.trainedTokens++;
    stats.droppedDocs += r.dropped.length;
    yield { ...r, index: i };
  }
}

/** Documents by id from the rows of a documents.jsonl. */
export function docMap(rows: { id: string; title: string; content: string }[]): Map<string, RagDoc> {
  return new Map(rows.map((r) => [r.id, { id: r.id, title: r.title, text: r.content }]));
}
