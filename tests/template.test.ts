import { describe, expect, test } from "bun:test";
import { BudgetError, type Conversation, docsBlockIds, parse, parseCitations, render, resolveCitations } from "../src/rag/template.ts";
import { trainBpe } from "../src/tokenizer/train.ts";

const TEXT = "Lisbon is the capital of Portugal. Acme Corp was founded by Ada Lovelace in 1843. Who founded Acme? Where is Lisbon?";
const { tokenizer: tok } = trainBpe([TEXT.repeat(10)], { vocabSize: 400 });

/** Renders ids as readable text with weights marked: `«...»` = weight 1 spans. */
function show(ids: number[], weights: Float32Array): string {
  let out = "";
  let inW = false;
  ids.forEach((id, i) => {
    const w = weights[i]! !== 0;
    if (w !== inW) out += w ? "«" : "»";
    inW = w;
    out += tok.decode([id]);
  });
  return out + (inW ? "»" : "");
}

const docs = [
  { id: "d1", title: "Lisbon", text: "Lisbon is the capital of Portugal." },
  { id: "d2", title: "Acme Corp", text: "Acme Corp was founded by Ada Lovelace in 1843." },
  { id: "d3", title: "Noise", text: "Unrelated words about nothing in particular at all." },
];

const single: Conversation = {
  messages: [
    { role: "system", content: "Answer from the documents." },
    { role: "user", content: "Who founded Acme?" },
    { role: "docs", docs },
    { role: "assistant", content: "Ada Lovelace [2]." },
  ],
};

describe("render", () => {
  test("golden rendering and weight mask of a single-hop conversation", () => {
    const r = render(tok, single);
    expect(show(r.ids, r.weights)).toBe(
      "<|bos|><|user_start|>Answer from the documents.\n\nWho founded Acme?<|user_end|>" +
        "<|docs_start|>[1] Lisbon\nLisbon is the capital of Portugal.\n\n[2] Acme Corp\nAcme Corp was founded by Ada Lovelace in 1843.\n\n[3] Noise\nUnrelated words about nothing in particular at all.<|docs_end|>" +
        "<|user_start|>Who founded Acme?<|user_end|>" +
        "<|assistant_start|>«Ada Lovelace [2].<|assistant_end|>»",
    );
    expect(r.docs.map((d) => [d.n, d.id])).toEqual([
      [1, "d1"],
      [2, "d2"],
      [3, "d3"],
    ]);
    expect(r.weights.length).toBe(r.ids.length);
  });

  test("read-twice can be turned off", () => {
    const r = render(tok, single, { readTwice: false });
    expect(tok.decode(r.ids)).not.toContain("<|docs_end|><|user_start|>");
  });

  test("multi-hop: queries are trained, runtime documents are not, numbering continues", () => {
    const conv: Conversation = {
      messages: [
        { role: "user", content: "Where is the company of Ada?" },
        { role: "docs", docs: [docs[2]!] },
        {
          role: "assistant",
          content: [
            { type: "query", text: "Ada Lovelace company" },
            { type: "docs", docs: [docs[1]!] },
            { type: "query", text: "Acme Corp location" },
            { type: "docs", docs: [docs[0]!] },
            { type: "text", text: "Lisbon [3], per [2]." },
          ],
        },
      ],
    };
    const r = render(tok, conv, { readTwice: false });
    expect(show(r.ids, r.weights)).toBe(
      "<|bos|><|user_start|>Where is the company of Ada?<|user_end|><|docs_start|>[1] Noise\nUnrelated words about nothing in particular at all.<|docs_end|>" +
        "<|assistant_start|>«<|query_start|>Ada Lovelace company<|query_end|>»<|docs_start|>[2] Acme Corp\nAcme Corp was founded by Ada Lovelace in 1843.<|docs_end|>" +
        "«<|query_start|>Acme Corp location<|query_end|>»<|docs_start|>[3] Lisbon\nLisbon is the capital of Portugal.<|docs_end|>«Lisbon [3], per [2].<|assistant_end|>»",
    );
    const back = parse(tok, r.ids, r.docs);
    expect(back).toEqual(conv);
  });

  test("docsBlockIds is the block render writes (for runtime injection after <|query_end|>)", () => {
    const conv: Conversation = {
      messages: [
        { role: "user", content: "Q?" },
        { role: "docs", docs: [docs[0]!] },
        { role: "assistant", content: [{ type: "query", text: "more" }, { type: "docs", docs: [docs[1]!, docs[2]!] }, { type: "text", text: "A [2]." }] },
      ],
    };
    const r = render(tok, conv, { readTwice: false });
    const block = docsBlockIds(tok, [docs[1]!, docs[2]!], 2);
    const at = r.ids.indexOf(tok.specialId("<|query_end|>")) + 1;
    expect(r.ids.slice(at, at + block.length)).toEqual(block);
  });

  test("float weights carry a reward or advantage (negative too)", () => {
    const conv: Conversation = { messages: [{ role: "user", content: "Who?" }, { role: "assistant", content: "Ada [1].", weight: -0.5 }] };
    const r = render(tok, conv);
    const ws = [...r.weights].filter((w) => w !== 0);
    expect(new Set(ws)).toEqual(new Set([-0.5]));
  });

  test("open rendering for inference ends at <|assistant_start|> and reserves room", () => {
    const conv: Conversation = { messages: [{ role: "user", content: "Who founded Acme?" }, { role: "docs", docs }] };
    const r = render(tok, conv, { open: true });
    expect(r.ids.at(-1)).toBe(tok.specialId("<|assistant_start|>"));
    const full = r.ids.length;
    const r2 = render(tok, conv, { open: true, maxTokens: full, reserve: 10 });
    expect(r2.ids.length + 10).toBeLessThanOrEqual(full);
    expect(r2.dropped).toContain("d3");
  });
});

describe("budget", () => {
  const full = render(tok, single).ids.length;
  const len = (d: (typeof docs)[number]) => tok.encode(d.text).length;

  test("drops uncited documents lowest rank first and renumbers citations", () => {
    const r = render(tok, single, { maxTokens: full - len(docs[2]!) - 2 });
    expect(r.dropped).toEqual(["d3"]);
    expect(r.ids.length).toBeLessThanOrEqual(full - len(docs[2]!) - 2);
    const r2 = render(tok, single, { maxTokens: r.ids.length - 1 });
    expect(r2.dropped).toEqual(["d3", "d1"]);
    // the cited document is now [1], and the answer follows it
    expect(tok.decode(r2.ids)).toContain("<|docs_start|>[1] Acme Corp\n");
    expect(tok.decode(r2.ids)).toContain("<|assistant_start|>Ada Lovelace [1].<|assistant_end|>");
    expect(r2.docs.map((d) => [d.n, d.id, d.original])).toEqual([[1, "d2", 2]]);
  });

  test("then truncates the remaining (cited) documents by tokens; the answer is never cut", () => {
    const minimal = render(tok, single, { maxTokens: 10_000 }).ids.length - len(docs[0]!) - len(docs[1]!) - len(docs[2]!) - 10;
    const r = render(tok, single, { maxTokens: minimal + 5 });
    expect(r.ids.length).toBeLessThanOrEqual(minimal + 5);
    expect(r.docs.find((d) => d.id === "d2")!.truncated).toBe(true);
    expect(tok.decode(r.ids).endsWith("<|assistant_start|>Ada Lovelace [1].<|assistant_end|>")).toBe(true);
  });

  test("a conversation that cannot fit is reported, not cut", () => {
    expect(() => render(tok, single, { maxTokens: 20 })).toThrow(BudgetError);
    try {
      render(tok, single, { maxTokens: 20 });
    } catch (e) {
      expect((e as BudgetError).needed).toBeGreaterThan(20);
      expect((e as Error).message).toContain("budget is 20");
    }
  });
});

describe("parse", () => {
  test("render/parse round trip keeps messages and citations", () => {
    const conv: Conversation = {
      messages: [
        { role: "user", content: "Who founded Acme? Where is Lisbon?" },
        { role: "docs", docs },
        { role: "assistant", content: "Ada Lovelace [2]; Lisbon is in Portugal [1]." },
        { role: "user", content: "Thanks" },
        { role: "assistant", content: "You are welcome." },
      ],
    };
    const r = render(tok, conv);
    const back = parse(tok, r.ids, r.docs);
    expect(back).toEqual(conv);
    const answer = back.messages[2] as { content: string };
    expect(parseCitations(answer.content)).toEqual([2, 1]);
    expect(resolveCitations(answer.content, r.docs)).toEqual({ docIds: ["d2", "d1"], invalid: [] });
    expect(resolveCitations("see [7]", r.docs).invalid).toEqual([7]);
  });

  test("parses a model's unfinished output", () => {
    const r = render(tok, { messages: [{ role: "user", content: "Who?" }] }, { open: true });
    const generated = [...r.ids, ...tok.encode("Ada [1")];
    const back = parse(tok, generated);
    expect(back.messages.at(-1)).toEqual({ role: "assistant", content: "Ada [1" });
  });
});
