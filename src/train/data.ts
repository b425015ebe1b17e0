/**
 * Training data for the CPU recipe (docs/training.md, ../shared/reference/learning_to_read.md):
 *
 * - Pretraining: documents as plain text (the test entities' documents left out), every token trained.
 * - RAG SFT with dense supervision: one set of documents is followed by several question-answer turns
 *   about it (all questions about one entity share its document), so the documents are paid for once
 *   per several answers. A curriculum starts on gold-only contexts (short) and then moves to retrieved
 *   documents with distractors, and some contexts lose their gold document to teach abstention.
 * - Multi-hop trajectories (REFRAG SFT) from the template/data issue's MultiHopTask.
 *
 * Every example is a pure function of (seed, position, phase), so resuming replays the same data.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.ts";
import type { Kb } from "../kb/kb.ts";
import { prng, shuffle } from "../data/random.ts";
import { NAME_SUFFIXES, SYLLABLES } from "../data/synthetic.ts";
import { type DocumentRow, type QuestionRow, readDocuments, readQuestions } from "../data/schema.ts";
import { answerWithCitations, MultiHopTask, RetrievalCache, type SearchFn } from "../rag/tasks.ts";
import { BudgetError, type Conversation, type Message, type RagDoc, render, type TemplateTokenizer } from "../rag/template.ts";
import type { Example } from "./batch.ts";

export interface Dataset {
  dir: string;
  documents: DocumentRow[];
  docs: Map<string, RagDoc>;
  train: QuestionRow[];
  val: QuestionRow[];
  test: QuestionRow[];
}

export function loadDataset(dir: string): Dataset {
  const dp = join(dir, "documents.jsonl");
  if (!existsSync(dp)) throw new UserError(`${dir}: no documents.jsonl (make one with \`nanorag prepare\`)`);
  const documents = readDocuments(dp);
  const ids = new Set(documents.map((d) => d.id));
  const q = (name: string) => (existsSync(join(dir, name)) ? readQuestions(join(dir, name), ids) : []);
  const train = q("train.jsonl");
  if (train.length === 0) throw new UserError(`${dir}: no training questions (train.jsonl)`);
  return { dir, documents, docs: new Map(documents.map((d) => [d.id, { id: d.id, title: d.title, text: d.content }])), train, val: q("val.jsonl"), test: q("test.jsonl") };
}

/** Documents whose text may be used for pretraining and tokenizer training: not the test split's. */
export function trainingDocuments(docs: DocumentRow[]): DocumentRow[] {
  return docs.filter((d) => d.metadata?.split !== "test");
}

/** A retriever over a KB, reduced to documents, with a cache keyed by (retriever, topK, query). */
export function kbSearch(kb: Kb, retriever: string, cache = new RetrievalCache()): { search: SearchFn; docs: (q: string, k: number) => Promise<RagDoc[]>; cache: RetrievalCache } {
  const search: SearchFn = (query, topK) => kb.search(retriever, query, { topK, group: "doc" });
  return { search, cache, docs: (q, k) => cache.search(retriever, search, q, k) };
}

/**
 * Plain-text LM examples: `<|bos|>title\ncontent`, every token but the first trained.
 *
 * With `copy`, each example is a text whose names and numbers are replaced by fresh ones (new every
 * time it is drawn), followed by a second copy of itself. A small model memorises a few hundred
 * repeated documents long before it learns to copy (measured: held-out loss on the second copy no
 * lower than on the first after 300 steps), so the names must be new each time; then the first copy
 * teaches the sentence forms, and every token of the second can only be predicted by copying from the
 * first (an induction circuit), the skill that answering from documents needs, trained densely.
 */
export class TextSource {
  private readonly texts: string[];
  private readonly encoded: number[][];
  /** capitalised words common enough to be ordinary words ("The", "People"), not names */
  private readonly common = new Set<string>();
  constructor(
    readonly tok: TemplateTokenizer,
    texts: string[],
    readonly seed: number,
    readonly copy = false,
  ) {
    if (texts.length === 0) throw new UserError("no text to train on");
    this.texts = texts;
    const bos = tok.specialId("<|bos|>");
    this.encoded = copy ? [] : texts.map((t) => [bos, ...tok.encode(t)]);
    if (copy) {
      const df = new Map<string, number>();
      for (const t of texts) for (const w of new Set(t.match(CAPITALISED) ?? [])) df.set(w, (df.get(w) ?? 0) + 1);
      for (const [w, n] of df) if (n > Math.max(2, texts.length * 0.02)) this.common.add(w);
    }
  }
  private perms = new Map<number, number[]>();
  get(position: number): Example {
    const n = this.texts.length;
    const epoch = Math.floor(position / n);
    let p = this.perms.get(epoch);
    if (!p) {
      p = shuffle(Array.from({ length: n }, (_, i) => i), prng(this.seed, epoch, 0x7e47));
      this.perms.clear();
      this.perms.set(epoch, p);
    }
    const i = p[position % n]!;
    let ids = this.encoded[i];
    if (!ids) {
      const text = this.tok.encode(freshNames(this.texts[i]!, this.common, prng(this.seed, position, 0xc0b1)));
      ids = [this.tok.specialId("<|bos|>"), ...text, ...this.tok.encode("\n\n"), ...text];
    }
    const weights = new Float32Array(ids.length).fill(1);
    weights[0] = 0;
    return { ids, weights };
  }
}

const CAPITALISED = /(?<![\p{L}\p{N}])\p{Lu}\p{L}*/gu;
const NUMBER = /(?<![\p{L}\p{N}])\d[\d,]*\d|(?<![\p{L}\p{N}])\d/gu;

/**
 * The text with every name (a capitalised word not in `common`) and number replaced by a fresh
 * value of the same shape, the same value for every occurrence of a word.
 */
export function freshNames(text: string, common: ReadonlySet<string>, rand: () => number): string {
  const map = new Map<string, string>();
  const fresh = (w: string) => {
    let v = map.get(w);
    if (v === undefined) {
      v = freshValue(w, [], rand);
      map.set(w, v);
    }
    return v;
  };
  return text.replace(CAPITALISED, (w) => (common.has(w) ? w : fresh(w))).replace(NUMBER, fresh);
}

export interface RagSourceOptions {
  seqLen: number;
  qaPerContext: number;
  topK: number;
  distractors: number;
  abstainRate: number;
  readTwice: boolean;
  multiHopRate: number;
  seed: number;
  /** share of contexts whose answers are rewritten to other values of the same relation (counterfactual augmentation) */
  augment?: number;
  /** share of those rewritten common-noun answers that take a word from outside their relation (TrainConfig.augmentNouns) */
  augmentNouns?: number;
}

export type Phase = "gold" | "full";

/** Dense-supervision RAG conversations over a question set, grouped by gold document. */
export class RagSource {
  readonly groups: { doc: string; qs: QuestionRow[] }[] = [];
  readonly bridges: QuestionRow[];
  private readonly multiHop: MultiHopTask | null;
  private readonly pool: RagDoc[];
  /** answers by relation ("Where was {s} born?" -> every training answer to it) */
  private readonly answersByRelation = new Map<string, string[]>();
  /** every lower-case answer of every relation ("nurse", "chess", "otter") */
  private readonly commonNouns: string[] = [];
  private perms = new Map<number, number[]>();
  constructor(
    readonly tok: TemplateTokenizer,
    questions: QuestionRow[],
    readonly docs: Map<string, RagDoc>,
    readonly retrieve: ((q: string, k: number) => Promise<RagDoc[]>) | null,
    search: SearchFn | null,
    cache: RetrievalCache | null,
    readonly o: RagSourceOptions,
    retrieverName = "bm25",
  ) {
    const by = new Map<string, QuestionRow[]>();
    for (const q of questions) {
      if (q.relevant_docs.length !== 1 || q.type === "bridge") continue;
      const d = q.relevant_docs[0]!;
      if (!by.has(d)) by.set(d, []);
      by.get(d)!.push(q);
    }
    for (const [doc, qs] of [...by].sort((a, b) => (a[0] < b[0] ? -1 : 1))) this.groups.push({ doc, qs });
    this.bridges = questions.filter((q) => q.hops && q.hops.length > 0);
    const augment = (o.augment ?? 0) > 0 ? (conv: Conversation, q: QuestionRow, rand: () => number) => (rand() < o.augment! ? this.counterfactualTrajectory(conv, q, rand) : conv) : undefined;
    this.multiHop = search && this.bridges.length ? new MultiHopTask(this.bridges, search, { retriever: retrieverName, topK: o.topK, cache: cache ?? undefined, docs, seed: o.seed, system: null, augment }) : null;
    this.pool = [...docs.values()];
    for (const g of this.groups) {
      const title = docs.get(g.doc)?.title;
      if (!title) continue;
      for (const q of g.qs) {
        if (!q.answerable) continue;
        const key = relationKey(q.question, title);
        if (!this.answersByRelation.has(key)) this.answersByRelation.set(key, []);
        const list = this.answersByRelation.get(key)!;
        if (!list.includes(q.answer)) list.push(q.answer);
        if (isCommonNoun(q.answer) && !this.commonNouns.includes(q.answer)) this.commonNouns.push(q.answer);
      }
    }
    if (this.groups.length === 0 && !this.multiHop) throw new UserError("no questions to build RAG training examples from");
  }

  private perm(epoch: number, n: number, salt: number): number[] {
    const key = epoch * 7 + salt;
    let p = this.perms.get(key);
    if (!p) {
      if (this.perms.size > 8) this.perms.clear();
      p = shuffle(Array.from({ length: n }, (_, i) => i), prng(this.o.seed, epoch, salt));
      this.perms.set(key, p);
    }
    return p;
  }

  /** The conversation at `position` in `phase` (null when it cannot fit the row). */
  async conversation(position: number, phase: Phase): Promise<Conversation | null> {
    const rand = prng(this.o.seed, position, phase === "gold" ? 1 : 2);
    if (this.multiHop && phase === "full" && (this.groups.length === 0 || rand() < this.o.multiHopRate)) {
      const n = this.bridges.length;
      const i = this.perm(Math.floor(position / n), n, 3)[position % n]!;
      return this.multiHop.get(i, Math.floor(position / n));
    }
    const G = this.groups.length;
    const g = this.groups[this.perm(Math.floor(position / G), G, 1)[position % G]!]!;
    let qs = shuffle([...g.qs], rand).slice(0, this.o.qaPerContext);
    let gold = this.docs.get(g.doc);
    if (!gold) return null;
    let names = new Map<string, string>();
    if ((this.o.augment ?? 0) > 0 && rand() < this.o.augment!) ({ gold, qs, names } = this.counterfactual(gold, qs, rand));
    let ctx: RagDoc[];
    if (phase === "gold" || !this.retrieve) ctx = [gold];
    else {
      // one more than topK, so that a context that lost its gold document still has topK: with one
      // document fewer, "one document" meant "abstain" and the model learned to count (measured: given
      // only the gold document it answered "The documents do not say." for 92 of 100 test questions)
      ctx = (await this.retrieve(qs[0]!.question, this.o.topK + 1)).filter((d) => d.id !== g.doc).slice(0, this.o.topK);
      const abstain = rand() < this.o.abstainRate;
      if (!abstain) {
        if (ctx.length >= this.o.topK) ctx.pop();
        ctx.splice(Math.floor(rand() * (ctx.length + 1)), 0, gold);
      }
      for (let k = 0, tries = 0; k < this.o.distractors && tries < 20; tries++) {
        const d = this.pool[Math.floor(rand() * this.pool.length)]!;
        if (d.id === g.doc || ctx.some((x) => x.id === d.id)) continue;
        ctx.splice(Math.floor(rand() * (ctx.length + 1)), 0, d);
        k++;
      }
    }
    return renameAll(qaConversation(qs, ctx), names);
  }

  /**
   * Counterfactual augmentation: rewrites the gold document so that training entities' facts change
   * from epoch to epoch and memorising them cannot help; only reading can. Each answer in the document
   * becomes a fresh value of the same shape (a new pseudo-word for names, another number for numbers,
   * another answer of the same relation for common nouns), so the model learns to copy arbitrary token
   * strings (as it must for entities it never saw), not to pick among the values it knows. The subject
   * gets fresh names word by word (`names`), which the caller applies to the whole conversation after
   * retrieving with the real question: the retrieved distractors keep the name words they share with
   * the subject ("Shifel Umte" beside "Umte Vellomi" becomes "Shifel Fadra" beside "Fadra Lovi"), the
   * near-miss the model meets at test time. (Retrieving with the renamed question found documents
   * that share no name with the subject, and the model then took 13 of its 21 wrong single-hop answers
   * on world seed 1 from the other document in context.)
   */
  counterfactual(gold: RagDoc, qs: QuestionRow[], rand: () => number): { gold: RagDoc; qs: QuestionRow[]; names: Map<string, string> } {
    let text = gold.text;
    const out: QuestionRow[] = [];
    const sub = (from: string, to: string) => {
      const re = new RegExp(`(?<![\\p{L}\\p{N}])${escapeRe(from)}(?![\\p{L}\\p{N}])`, "gu");
      if (!re.test(text)) return false;
      text = text.replace(re, to);
      return true;
    };
    for (const q of qs) {
      if (!q.answerable) {
        out.push(q);
        continue;
      }
      const list = this.answersByRelation.get(relationKey(q.question, gold.title)) ?? [];
      const foreign = (this.o.augmentNouns ?? 0) > 0 && isCommonNoun(q.answer) && rand() < this.o.augmentNouns!;
      const alt = foreign ? this.foreignNoun(list, text, rand) : freshValue(q.answer, list, rand);
      if (alt === q.answer || text.includes(alt) || !sub(q.answer, alt)) {
        out.push(q);
        continue;
      }
      out.push({ ...q, answer: alt });
    }
    const names = new Map<string, string>();
    freshNameWords(gold.title, names, rand);
    return { gold: { ...gold, text }, qs: out, names };
  }

  /**
   * A lower-case word outside a relation's values and not in `text`: half the time another
   * relation's value (a hobby where a profession stood), else a fresh pseudo-word. Measured on a RAG model trained with values of
   * the same relation only: it ranked the document's profession first 0 times in 60 with the gold
   * document alone, and a fresh word 0 times in 90: it picked among the values it knew instead of copying.
   */
  foreignNoun(relation: string[], text: string, rand: () => number): string {
    const others = this.commonNouns.filter((w) => !relation.includes(w) && !text.includes(w));
    return others.length && rand() < 0.5 ? others[Math.floor(rand() * others.length)]! : pseudoWord(rand);
  }

  /**
   * Counterfactual augmentation of a multi-hop trajectory: the subject, every hop's entity (the
   * titles of the hops' documents, named in the documents before them and in the follow-up queries)
   * and the answer get fresh names, the same everywhere in the conversation, so the model must copy
   * the bridge entity's name into its query and the answer from the last document.
   */
  counterfactualTrajectory(conv: Conversation, q: QuestionRow, rand: () => number): Conversation {
    const names = new Map<string, string>();
    for (const h of q.hops ?? []) {
      const t = this.docs.get(h.doc)?.title;
      if (t) freshNameWords(t, names, rand);
    }
    if (q.answerable) freshNameWords(q.answer, names, rand);
    return renameAll(conv, names);
  }

  /**
   * The rendered example at `position`. Documents are never truncated (a cut document could no longer
   * support its answer, which would teach the model to make answers up): uncited documents may be
   * dropped, and when that is not enough, question-answer turns are removed from the end. Turns beyond
   * the second go first, so that the documents (distractors included) stay.
   */
  async example(position: number, phase: Phase): Promise<Example | null> {
    const conv = await this.conversation(position, phase);
    if (!conv) return null;
    let messages = spaceAnswers(conv).messages;
    const turns = () => messages.filter((m) => m.role === "user").length;
    while (turns() > 2 && render(this.tok, { messages }, { readTwice: this.o.readTwice }).ids.length > this.o.seqLen + 1) {
      messages = messages.slice(0, messages.findLastIndex((m) => m.role === "user"));
    }
    for (;;) {
      try {
        return render(this.tok, { messages }, { maxTokens: this.o.seqLen + 1, readTwice: this.o.readTwice, minDocTokens: 1 << 30 });
      } catch (e) {
        if (!(e instanceof BudgetError)) throw e;
        const lastUser = messages.findLastIndex((m) => m.role === "user");
        if (lastUser <= 0) return null;
        messages = messages.slice(0, lastUser);
      }
    }
  }
}

/**
 * Assistant text starts with a space: then an answer copied from a document ("... was born in
 * Kalomi") is the same tokens as in the document (" Kalomi"), not a different split of "Kalomi" at
 * the start of the turn. Queries likewise. Generation strips the space again.
 */
export function spaceAnswers(conv: Conversation): Conversation {
  const sp = (t: string) => (t.startsWith(" ") ? t : ` ${t}`);
  return {
    messages: conv.messages.map((m) => {
      if (m.role !== "assistant") return m;
      if (typeof m.content === "string") return { ...m, content: sp(m.content) };
      return { ...m, content: m.content.map((p) => (p.type === "docs" ? p : { ...p, text: sp(p.text) })) };
    }),
  };
}

/** Every text of a conversation with whole-word occurrences of `names`' keys replaced (in one pass, longest first). */
export function renameAll(conv: Conversation, names: ReadonlyMap<string, string>): Conversation {
  const keys = [...names.keys()].filter((k) => k && names.get(k) !== k).sort((a, b) => b.length - a.length);
  if (keys.length === 0) return conv;
  const re = new RegExp(`(?<![\\p{L}\\p{N}])(?:${keys.map(escapeRe).join("|")})(?![\\p{L}\\p{N}])`, "gu");
  const r = (t: string) => t.replace(re, (m) => names.get(m) ?? m);
  const docs = (ds: RagDoc[]) => ds.map((d) => ({ ...d, title: r(d.title), text: r(d.text) }));
  return {
    messages: conv.messages.map((m): Message => {
      if (m.role === "docs") return { ...m, docs: docs(m.docs) };
      if (m.role === "user" || m.role === "system") return { ...m, content: r(m.content) };
      if (typeof m.content === "string") return { ...m, content: r(m.content) };
      return { ...m, content: m.content.map((p) => (p.type === "docs" ? { ...p, docs: docs(p.docs) } : { ...p, text: r(p.text) })) };
    }),
  };
}

/** Adds a fresh name (freshValue) for each word of `name` that `names` does not map yet; kept words ("Works") map to nothing. */
export function freshNameWords(name: string, names: Map<string, string>, rand: () => number): void {
  const fresh = freshValue(name, [], rand).split(" ");
  name.split(" ").forEach((w, i) => {
    if (w !== fresh[i] && !names.has(w)) names.set(w, fresh[i]!);
  });
}

/** A question's relation: the question with the subject's name replaced by {s}. */
export function relationKey(question: string, subject: string): string {
  return question.split(subject).join("{s}");
}

/** A lower-case answer that is neither a number nor a name: a profession, a hobby, an industry. */
function isCommonNoun(value: string): boolean {
  return /^\p{Ll}[\p{Ll} ]*$/u.test(value);
}

/** A fresh name-like word of 2-3 of the synthetic world's syllables, so it splits into tokens the way held-out names do. */
export function pseudoWord(rand: () => number): string {
  const n = 2 + Math.floor(rand() * 2);
  let w = "";
  for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(rand() * SYLLABLES.length)]!;
  return w;
}

/**
 * A replacement of the same shape: numbers keep their digit grouping; capitalised words become new
 * pseudo-words that keep the world's name endings ("Morgrimouth" -> "Velsamouth"; common trailing
 * words such as "Industries" stay); a lower-case answer becomes another answer of the same relation.
 * Without the endings a model trained on fresh names cut them off test names ("Morgriia" for
 * Morgrimouth, "Vicalgri" for Vicalgrigate).
 */
export function freshValue(value: string, sameRelation: string[], rand: () => number): string {
  if (/^\d[\d,]*$/.test(value)) {
    const digits = value.replace(/,/g, "");
    let n = "";
    for (let i = 0; i < digits.length; i++) n += String(i === 0 ? 1 + Math.floor(rand() * 9) : Math.floor(rand() * 10));
    if (/^(1[89]|20)\d\d$/.test(digits)) n = String(1800 + Math.floor(rand() * 220));
    return value.includes(",") ? Number(n).toLocaleString("en-US") : n;
  }
  const words = value.split(" ");
  if (words.some((w) => /^\p{Lu}/u.test(w))) {
    return words
      .map((w, i) => (/^\p{Lu}/u.test(w) && !(i > 0 && i === words.length - 1 && COMMON_TAIL.has(w)) ? cap(pseudoWord(rand)) + nameSuffix(w) : w))
      .join(" ");
  }
  if (sameRelation.length > 1) {
    for (let k = 0; k < 8; k++) {
      const alt = sameRelation[Math.floor(rand() * sameRelation.length)]!;
      if (alt !== value) return alt;
    }
  }
  return value;
}

/** The generated-name ending of a word ("mouth" of "Morgrimouth"), or "" (a word that is only an ending has none). */
function nameSuffix(word: string): string {
  return NAME_SUFFIXES.find((s) => word.length > s.length + 1 && word.endsWith(s)) ?? "";
}

const COMMON_TAIL = new Set(["Industries", "Labs", "Corporation", "Systems", "Works", "Holdings", "Group", "Dynamics", "crown", "mark", "florin", "dinar", "real", "thaler", "ducat", "lira"]);
const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** user q1, docs, assistant a1, user q2, assistant a2, ... (no system prompt: it would cost tokens in every row). */
export function qaConversation(qs: QuestionRow[], docs: RagDoc[]): Conversation {
  const messages: Message[] = [];
  qs.forEach((q, i) => {
    messages.push({ role: "user", content: q.question });
    if (i === 0) messages.push({ role: "docs", docs });
    messages.push({ role: "assistant", content: answerWithCitations(q, docs) });
  });
  return { messages };
}

/** Text of documents for LM training / tokenizer training. */
export function docText(d: DocumentRow): string {
  return d.title ? `${d.title}\n${d.content}` : d.content;
}

export function readTextCorpus(path: string): string[] {
  const raw = readFileSync(path, "utf8");
  if (path.endsWith(".jsonl")) {
    return raw.split("\n").filter((l) => l.trim()).map((l) => {
      const r = JSON.parse(l) as { title?: string; content?: string; text?: string };
      return r.content !== undefined ? (r.title ? `${r.title}\n${r.content}` : r.content) : (r.text ?? "");
    });
  }
  return raw.split(/\n\s*\n/).filter((p) => p.trim());
}
