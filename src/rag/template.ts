/**
 * The RAG chat template: one renderer for training and inference (DESIGN.md section 6,
 * docs/tokenizer.md "Chat template").
 *
 *   <|bos|>
 *   <|user_start|>{system}\n\n{question}<|user_end|>             weight 0 (system folds into the first user turn)
 *   <|docs_start|>[1] {title}\n{text}\n\n[2] ...<|docs_end|>      weight 0 (documents injected by the runtime)
 *   <|user_start|>{question}<|user_end|>                          weight 0 ("read twice": the question again after the documents)
 *   <|assistant_start|>                                           weight 0
 *     {text citing [n]}                                           weight 1 (or the message's weight)
 *     <|query_start|>{follow-up query}<|query_end|>               weight 1 (multi-hop: the model asks ...)
 *     <|docs_start|>[3] ...<|docs_end|>                           weight 0 (... the runtime answers with documents)
 *     {more text}                                                 weight 1
 *   <|assistant_end|>                                             weight 1
 *
 * Documents are numbered [1]..[k] in order of appearance over the whole conversation; citations in
 * assistant text use those numbers. `weights[i]` is the weight of producing token `ids[i]` (the
 * trainer shifts by one). Weights are floats so the same path carries SFT masks, rewards and
 * advantages.
 */
import { UserError } from "../errors.ts";

export interface RagDoc {
  id: string;
  title: string;
  text: string;
}

export type AssistantPart = { type: "text"; text: string } | { type: "query"; text: string } | { type: "docs"; docs: RagDoc[] };

export type Message =
  | { role: "system"; content: string }
  | { role: "user"; content: string }
  | { role: "docs"; docs: RagDoc[] }
  | { role: "assistant"; content: string | AssistantPart[]; weight?: number };

export interface Conversation {
  messages: Message[];
}

/** What the renderer needs from a tokenizer (src/tokenizer/bpe.ts's Tokenizer fits). */
export interface TemplateTokenizer {
  encode(text: string): number[];
  decode(ids: ArrayLike<number>): string;
  specialId(name: string): number;
}

export interface RenderOptions {
  /** Token budget for the whole rendering (plus `reserve`). Default: no limit. */
  maxTokens?: number;
  /** Tokens kept free for generation (inference). Default 0. */
  reserve?: number;
  /** Repeat the question after a documents block that follows it (JRT "read twice"). Default true. */
  readTwice?: boolean;
  /**
   * Inference: leave the last assistant turn open (no <|assistant_end|>), or open a new one when the
   * conversation does not end with an assistant message, so the model continues from there.
   */
  open?: boolean;
  /** Truncation never cuts a document's text below this many tokens. Default 0 (title only). */
  minDocTokens?: number;
}

/** A document as it appears in the rendering. */
export interface RenderedDoc {
  /** Its number in the rendering, [n]. */
  n: number;
  /** Its number in the conversation as given (before any trimming). */
  original: number;
  id: string;
  title: string;
  truncated: boolean;
}

export interface Rendered {
  ids: number[];
  weights: Float32Array;
  docs: RenderedDoc[];
  /** Ids of documents dropped to fit the budget (lowest rank first). */
  dropped: string[];
}

/** Thrown when a conversation cannot fit the budget even with every uncited document dropped and all truncated. */
export class BudgetError extends UserError {
  constructor(readonly needed: number, readonly budget: number) {
    super(`Conversation needs ${needed} tokens even with documents trimmed; the budget is ${budget}`);
    this.name = "BudgetError";
  }
}

export const CITATION_RE = /\[(\d+)\]/g;

/** The citation numbers in a text, in order of first appearance. */
export function parseCitations(text: string): number[] {
  const seen = new Set<number>();
  for (const m of text.matchAll(CITATION_RE)) seen.add(Number(m[1]));
  return [...seen];
}

/** Rewrites [n] citations through a map; numbers not in the map stay as they are. */
function remapCitations(text: string, map: Map<number, number>): string {
  return text.replace(CITATION_RE, (all, n: string) => {
    const to = map.get(Number(n));
    return to === undefined ? all : `[${to}]`;
  });
}

interface DocSlot {
  doc: RagDoc;
  original: number; // 1-based number over the conversation
  block: number;
  rank: number; // position within its block, 0 = best
  textIds: number[];
  keep: boolean;
  limit: number; // text tokens kept
  cited: boolean;
}

function assistantParts(m: Extract<Message, { role: "assistant" }>): AssistantPart[] {
  return typeof m.content === "string" ? [{ type: "text", text: m.content }] : m.content;
}

/** Renders a conversation into token ids and per-token weights, trimming documents to fit the budget. */
export function render(tok: TemplateTokenizer, conv: Conversation, opts: RenderOptions = {}): Rendered {
  const readTwice = opts.readTwice ?? true;
  const budget = opts.maxTokens ?? Infinity;
  const reserve = opts.reserve ?? 0;
  const minDoc = opts.minDocTokens ?? 0;
  const S = (name: string) => tok.specialId(name);
  const sp = {
    bos: S("<|bos|>"),
    us: S("<|user_start|>"),
    ue: S("<|user_end|>"),
    as: S("<|assistant_start|>"),
    ae: S("<|assistant_end|>"),
    ds: S("<|docs_start|>"),
    de: S("<|docs_end|>"),
    qs: S("<|query_start|>"),
    qe: S("<|query_end|>"),
  };

  // Fold system messages into the next user message, as nanochat does.
  const msgs: Message[] = [];
  const question = new Map<Message, string>(); // the user's own words, repeated by read-twice
  let pendingSystem: string[] = [];
  for (const m of conv.messages) {
    if (m.role === "system") pendingSystem.push(m.content);
    else if (m.role === "user" && pendingSystem.length) {
      const folded: Message = { role: "user", content: `${pendingSystem.join("\n\n")}\n\n${m.content}` };
      question.set(folded, m.content);
      msgs.push(folded);
      pendingSystem = [];
    } else msgs.push(m);
  }
  if (pendingSystem.length) msgs.unshift({ role: "user", content: pendingSystem.join("\n\n") });

  // Number every document in order of appearance.
  const slots: DocSlot[] = [];
  const blocks: DocSlot[][] = [];
  const addBlock = (docs: RagDoc[]) => {
    const b: DocSlot[] = docs.map((doc, rank) => {
      const textIds = tok.encode(doc.text);
      return { doc, original: slots.length + rank + 1, block: blocks.length, rank, textIds, keep: true, limit: textIds.length, cited: false };
    });
    slots.push(...b);
    blocks.push(b);
    return blocks.length - 1;
  };
  const blockOf = new Map<object, number>();
  for (const m of msgs) {
    if (m.role === "docs") blockOf.set(m, addBlock(m.docs));
    else if (m.role === "assistant") for (const p of assistantParts(m)) if (p.type === "docs") blockOf.set(p, addBlock(p.docs));
  }
  for (const m of msgs) {
    if (m.role !== "assistant") continue;
    for (const p of assistantParts(m)) {
      if (p.type !== "text") continue;
      for (const n of parseCitations(p.text)) if (slots[n - 1]) slots[n - 1]!.cited = true;
    }
  }

  const lastIdx = msgs.length - 1;
  const build = (): { ids: number[]; weights: number[]; docs: RenderedDoc[] } => {
    const ids: number[] = [sp.bos];
    const weights: number[] = [0];
    const push = (t: number[] | number, w: number) => {
      if (typeof t === "number") {
        ids.push(t);
        weights.push(w);
      } else
        for (const x of t) {
          ids.push(x);
          weights.push(w);
        }
    };
    const renum = new Map<number, number>();
    const docs: RenderedDoc[] = [];
    for (const s of slots) {
      if (!s.keep) continue;
      renum.set(s.original, docs.length + 1);
      docs.push({ n: docs.length + 1, original: s.original, id: s.doc.id, title: s.doc.title, truncated: s.limit < s.textIds.length });
    }
    const docsBlock = (b: number) => {
      push(sp.ds, 0);
      let first = true;
      for (const s of blocks[b]!) {
        if (!s.keep) continue;
        push(tok.encode(`${first ? "" : "\n\n"}[${renum.get(s.original)}] ${s.doc.title}\n`), 0);
        push(s.limit < s.textIds.length ? s.textIds.slice(0, s.limit) : s.textIds, 0);
        first = false;
      }
      push(sp.de, 0);
    };
    let lastUser: string | null = null;
    msgs.forEach((m, i) => {
      if (m.role === "user") {
        push(sp.us, 0);
        push(tok.encode(m.content), 0);
        push(sp.ue, 0);
        lastUser = question.get(m) ?? m.content;
      } else if (m.role === "docs") {
        docsBlock(blockOf.get(m)!);
        if (readTwice && lastUser !== null && msgs[i - 1]?.role === "user") {
          push(sp.us, 0);
          push(tok.encode(lastUser), 0);
          push(sp.ue, 0);
        }
      } else if (m.role === "assistant") {
        const w = m.weight ?? 1;
        push(sp.as, 0);
        for (const p of assistantParts(m)) {
          if (p.type === "text") push(tok.encode(remapCitations(p.text, renum)), w);
          else if (p.type === "query") {
            push(sp.qs, w);
            push(tok.encode(p.text), w);
            push(sp.qe, w);
          } else docsBlock(blockOf.get(p)!);
        }
        if (!(opts.open && i === lastIdx)) push(sp.ae, w);
      }
    });
    if (opts.open && msgs[lastIdx]?.role !== "assistant") push(sp.as, 0);
    return { ids, weights, docs };
  };

  let out = build();
  const fits = () => out.ids.length + reserve <= budget;
  const dropped: string[] = [];
  if (!fits()) {
    // Lowest rank first: the last document of a block before earlier ones; later blocks first on ties.
    const order = [...slots].sort((a, b) => b.rank - a.rank || b.block - a.block);
    for (const s of order) {
      if (fits()) break;
      if (s.cited) continue;
      s.keep = false;
      dropped.push(s.doc.id);
      out = build();
    }
    for (const s of order) {
      if (fits()) break;
      if (!s.keep) continue;
      const over = out.ids.length + reserve - budget;
      const next = Math.max(minDoc, s.limit - over);
      if (next >= s.limit) continue;
      s.limit = next;
      out = build();
    }
    if (!fits()) throw new BudgetError(out.ids.length + reserve, budget);
  }
  return { ids: out.ids, weights: Float32Array.from(out.weights), docs: out.docs, dropped };
}

/**
 * Parses token ids (a rendering, or a model's output continuing one) back into a conversation.
 * Documents come back with ids from `docIds` (n -> id, e.g. from `Rendered.docs`) or `#n`. The
 * read-twice repeat of a question is dropped; system text stays folded into the first user turn.
 * An unterminated final turn (generation stopped early) is kept.
 */
export function parse(tok: TemplateTokenizer, ids: ArrayLike<number>, docIds?: Map<number, string> | RenderedDoc[]): Conversation {
  const idOf = Array.isArray(docIds) ? new Map(docIds.map((d) => [d.n, d.id])) : (docIds ?? new Map<number, string>());
  const S = (name: string) => tok.specialId(name);
  const name = new Map<number, string>(
    ["bos", "user_start", "user_end", "assistant_start", "assistant_end", "docs_start", "docs_end", "query_start", "query_end"].map((n) => [S(`<|${n}|>`), n]),
  );
  const messages: Message[] = [];
  let i = 0;
  const n = ids.length;
  const readUntil = (end: string): string => {
    const buf: number[] = [];
    while (i < n && name.get(ids[i]!) !== end) buf.push(ids[i++]!);
    i++; // skip the end marker (or run past the end)
    return tok.decode(buf);
  };
  const parseDocs = (): RagDoc[] => {
    const text = readUntil("docs_end");
    const docs: RagDoc[] = [];
    const re = /(?:^|\n\n)\[(\d+)\] ([^\n]*)\n/g;
    const heads = [...text.matchAll(re)];
    heads.forEach((h, k) => {
      const start = h.index! + h[0].length;
      const end = k + 1 < heads.length ? heads[k + 1]!.index! : text.length;
      const num = Number(h[1]);
      docs.push({ id: idOf.get(num) ?? `#${num}`, title: h[2]!, text: text.slice(start, end) });
    });
    return docs;
  };
  while (i < n) {
    const kind = name.get(ids[i]!);
    i++;
    if (kind === "bos") continue;
    if (kind === "user_start") {
      const content = readUntil("user_end");
      const prev = messages[messages.length - 1];
      const prev2 = messages[messages.length - 2];
      if (prev?.role === "docs" && prev2?.role === "user" && prev2.content.endsWith(content)) continue; // read-twice repeat
      messages.push({ role: "user", content });
    } else if (kind === "docs_start") {
      messages.push({ role: "docs", docs: parseDocs() });
    } else if (kind === "assistant_start") {
      const parts: AssistantPart[] = [];
      let text: number[] = [];
      const flush = () => {
        if (text.length) parts.push({ type: "text", text: tok.decode(text) });
        text = [];
      };
      while (i < n) {
        const k = name.get(ids[i]!);
        if (k === "assistant_end") {
          i++;
          break;
        }
        if (k === "query_start") {
          flush();
          i++;
          parts.push({ type: "query", text: readUntil("query_end") });
        } else if (k === "docs_start") {
          flush();
          i++;
          parts.push({ type: "docs", docs: parseDocs() });
        } else text.push(ids[i++]!);
      }
      flush();
      const simple = parts.length === 1 && parts[0]!.type === "text";
      messages.push({ role: "assistant", content: simple ? (parts[0] as { text: string }).text : parts.length === 0 ? "" : parts });
    }
    // stray tokens outside any turn are skipped
  }
  return { messages };
}

/**
 * The token ids of a documents block numbered from `firstN`, exactly as `render` writes one: what
 * the runtime appends after the model's <|query_end|> during multi-hop generation.
 */
export function docsBlockIds(tok: TemplateTokenizer, docs: RagDoc[], firstN: number): number[] {
  const ids = [tok.specialId("<|docs_start|>")];
  docs.forEach((d, i) => ids.push(...tok.encode(`${i === 0 ? "" : "\n\n"}[${firstN + i}] ${d.title}\n`), ...tok.encode(d.text)));
  ids.push(tok.specialId("<|docs_end|>"));
  return ids;
}

/** Maps the citations in an answer to document ids through a rendering's numbering; unknown numbers are returned separately. */
export function resolveCitations(text: string, docs: RenderedDoc[]): { docIds: string[]; invalid: number[] } {
  const byN = new Map(docs.map((d) => [d.n, d.id]));
  const docIds: string[] = [];
  const invalid: number[] = [];
  for (const n of parseCitations(text)) {
    const id = byN.get(n);
    if (id === undefined) invalid.push(n);
    else docIds.push(id);
  }
  return { docIds, invalid };
}
