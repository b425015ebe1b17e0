import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { generateWorld, NAME_SUFFIXES } from "../src/data/synthetic.ts";
import { setThreads } from "../src/engine/index.ts";
import { render } from "../src/rag/template.ts";
import { Tokenizer } from "../src/tokenizer/bpe.ts";
import { trainBpe } from "../src/tokenizer/train.ts";
import { assemble, nextMicroBatch } from "../src/train/batch.ts";
import { buildConfig, checkPartial, configOverrides, DEFAULTS, loadNamed, NAMED } from "../src/train/config.ts";
import { prng } from "../src/data/random.ts";
import { docText, freshNames, freshValue, RagSource, TextSource, trainingDocuments } from "../src/train/data.ts";
import { docsBlockIds } from "../src/train/generate.ts";
import { resetInterrupt } from "../src/train/loop.ts";
import { lrMultiplier } from "../src/train/schedule.ts";
import { newModel, policyBatches, pretrainStage, type Rollout } from "../src/train/stages.ts";
import { runPretrain } from "../src/train/run.ts";
import { tempDir } from "./helpers.ts";

const world = generateWorld({ entities: 60, seed: 3 });
const docs = new Map(world.documents.map((d) => [d.id, { id: d.id, title: d.title, text: d.content }]));
let tok: Tokenizer;
let dir: string;

beforeAll(() => {
  setThreads(1);
  tok = trainBpe(trainingDocuments(world.documents).map(docText), { vocabSize: 400 }).tokenizer;
  dir = tempDir("nanorag-train-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tiny = () => buildConfig(NAMED.cpu_tiny!, { seed: 1, threads: 1 });

describe("config", () => {
  test("named configs are valid; the d20 ones match the seed's architecture", async () => {
    for (const name of Object.keys(NAMED)) expect(() => buildConfig(NAMED[name]!, {})).not.toThrow();
    const h = buildConfig(await loadNamed("rag_hybrid_d20"), {});
    expect(h.blockPattern).toBe("T".repeat(8) + "M".repeat(12));
    expect(h.nEmbd).toBe(1280);
    expect([h.seqLen, h.topK, h.lrEmbed, h.lrHead, h.lrMatrix, h.initLrFrac, h.deviceBatch]).toEqual([4096, 5, 0.2, 0.004, 0.02, 0.02, 4]);
    const m = buildConfig(await loadNamed("rag_mamba_d20"), {});
    expect(m.blockPattern).toBe("M".repeat(20));
    expect([m.seqLen, m.topK]).toEqual([8192, 10]);
    const r = buildConfig(await loadNamed("refrag_hybrid_d20"), {});
    expect([r.seqLen, r.maxHops, r.topKPerHop, r.useRewards, r.lrEmbed, r.lrMatrix, r.initLrFrac, r.steps]).toEqual([6144, 3, 3, true, 0.1, 0.01, 0.01, 500]);
  });
  test("every key is a flag; unknown keys and bad values are errors", () => {
    const o = configOverrides({ "lr-matrix": "0.05", "block-pattern": "MT", "use-rewards": true, "read-twice": "false" });
    expect(o).toEqual({ lrMatrix: 0.05, blockPattern: "MT", useRewards: true, readTwice: false });
    expect(() => checkPartial({ nope: 1 }, "x")).toThrow(/unknown config key "nope"/);
    expect(() => checkPartial({ steps: "3" }, "x")).toThrow(/must be a number/);
    expect(() => configOverrides({ steps: "many" })).toThrow(/--steps must be a number/);
    expect(() => buildConfig({}, { blockPattern: "TX" })).toThrow(/blockPattern/);
    expect(() => buildConfig({}, { abstainRate: 2 })).toThrow(/abstainRate/);
    expect(Object.keys(DEFAULTS).length).toBeGreaterThan(40);
  });
});

describe("schedule", () => {
  test("warmup, constant, warmdown", () => {
    const o = { steps: 100, warmupSteps: 10, warmdownFrac: 0.2, finalFrac: 0 };
    expect(lrMultiplier(0, o)).toBeCloseTo(0.1);
    expect(lrMultiplier(9, o)).toBeCloseTo(1);
    expect(lrMultiplier(50, o)).toBe(1);
    expect(lrMultiplier(79, o)).toBe(1);
    expect(lrMultiplier(80, o)).toBeCloseTo(1 - 1 / 20);
    expect(lrMultiplier(99, o)).toBeCloseTo(0);
  });
});

describe("batching", () => {
  test("targets shift by one; weight-0 targets are ignored; padding never trains", () => {
    const b = assemble([[{ ids: [1, 2, 3, 4], weights: [0, 0, 1, 1] }], []], 2, 4, 0);
    expect([...b.tokens]).toEqual([1, 2, 3, 4, 0, 0, 0, 0]);
    expect([...b.targets]).toEqual([-1, 3, 4, -1, -1, -1, -1, -1]);
    expect([...b.weights]).toEqual([0, 1, 1, 0, 0, 0, 0, 0]);
    expect(b.weightSum).toBe(2);
  });
  test("packing is deterministic and the cursor says where the next batch starts", async () => {
    const ex = (p: number) => ({ ids: Array.from({ length: 3 + (p % 4) }, (_, i) => 10 + p + i), weights: Array.from({ length: 3 + (p % 4) }, () => 1) });
    const src = async (p: number) => ex(p);
    const a = await nextMicroBatch(src, 0, 2, 8, 0, true);
    const b = await nextMicroBatch(src, a.cursor, 2, 8, 0, true);
    const whole = await nextMicroBatch(src, 0, 4, 8, 0, true);
    expect([...a.batch.tokens, ...b.batch.tokens]).toEqual([...whole.batch.tokens]);
    expect(b.cursor).toBe(whole.cursor);
  });
  test("documents and questions never receive weight; answers do", async () => {
    const src = new RagSource(tok, world.questions.train, docs, async () => [...docs.values()].slice(0, 3), null, null, { seqLen: 256, qaPerContext: 3, topK: 3, distractors: 1, abstainRate: 0, readTwice: true, multiHopRate: 0, seed: 0 });
    const DS = tok.specialId("<|docs_start|>"), DE = tok.specialId("<|docs_end|>"), US = tok.specialId("<|user_start|>"), UE = tok.specialId("<|user_end|>");
    const AS = tok.specialId("<|assistant_start|>"), AE = tok.specialId("<|assistant_end|>");
    let checked = 0;
    for (const phase of ["gold", "full"] as const) {
      const { batch } = await nextMicroBatch((p) => src.example(p, phase), 0, 4, 256, tok.specialId("<|bos|>"), true);
      for (let r = 0; r < batch.B; r++) {
        let zone: "none" | "docs" | "user" | "assistant" = "none";
        for (let j = 0; j < batch.T; j++) {
          const t = batch.tokens[r * batch.T + j]!;
          if (t === DS) zone = "docs";
          else if (t === DE || t === UE || t === AE) zone = "none";
          else if (t === US) zone = "user";
          else if (t === AS) zone = "assistant";
          // target j is the token at j+1: trained iff it is produced by the assistant
          const w = batch.weights[r * batch.T + j]!;
          if (zone === "docs" || zone === "user") expect(w).toBe(0);
          if (zone === "assistant" && j + 1 < batch.T && batch.targets[r * batch.T + j]! >= 0) {
            expect(w).toBe(1);
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
  });
  test("a runtime documents block renders exactly as the template's", () => {
    const d = [...docs.values()].slice(0, 2);
    const r = render(tok, { messages: [{ role: "user", content: "q" }, { role: "docs", docs: d }] }, { readTwice: false });
    const block = docsBlockIds(tok, d, 1);
    const start = r.ids.indexOf(tok.specialId("<|docs_start|>"));
    expect(r.ids.slice(start, start + block.length)).toEqual(block);
  });
});

describe("policy-gradient batches", () => {
  test("weights are group-normalised advantages on sampled tokens only", () => {
    const cfg = { ...tiny(), groupSize: 2, deviceBatch: 2, seqLen: 16, klCoef: 0 };
    const model = newModel(cfg, tok.vocabSize);
    const mk = (total: number): Rollout => ({
      question: world.questions.train[0]!,
      ids: [1, 2, 3, 4, 5, 6],
      weights: Float32Array.from([0, 0, 0, 1, 1, 0]), // prompt 0-2, sampled 3-4, injected 5
      parts: { answer: 0, cite: 0, retrieval: 0, hops: 0, total },
      answer: "",
    });
    const { micro, sampled } = policyBatches(model, null, [mk(1), mk(0)], cfg, 0);
    expect(sampled).toBe(4);
    const w = micro[0]!.weights;
    // row 0: targets at j=2,3 (tokens 4, 5) carry +1; row 1 carries -1; everything else 0
    expect([...w.slice(0, 16)].map((x) => Math.round(x * 1e4) / 1e4)).toEqual([0, 0, 1, 1, ...new Array(12).fill(0)]);
    expect([...w.slice(16, 32)].map((x) => Math.round(x * 1e4) / 1e4)).toEqual([0, 0, -1, -1, ...new Array(12).fill(0)]);
    // KL penalty: weight = advantage - klCoef * (log p - log p_ref); against itself the log-ratio is 0
    const same = policyBatches(model, model, [mk(1), mk(0)], { ...cfg, klCoef: 0.5 }, 0);
    expect(same.kl).toBe(0);
    expect([...same.micro[0]!.weights]).toEqual([...w]);
    const other = newModel({ ...cfg, seed: 9 }, tok.vocabSize);
    const kl = policyBatches(model, other, [mk(1), mk(0)], { ...cfg, klCoef: 0.5 }, 0);
    const b = kl.micro[0]!;
    const lp = model.eval(b.tokens, b.targets, b.B, b.T, { tokenLogprobs: true }).logprobs!;
    const lq = other.eval(b.tokens, b.targets, b.B, b.T, { tokenLogprobs: true }).logprobs!;
    expect(b.weights[2]!).toBeCloseTo(w[2]! - 0.5 * (lp[2]! - lq[2]!), 4);
    expect(b.weights[0]!).toBe(0);
    other.free();
    model.free();
  });
});

describe("training loop", () => {
  const texts = trainingDocuments(world.documents).map(docText);
  test("loss falls", async () => {
    const cfg = { ...tiny(), steps: 30, evalEvery: 100, saveEvery: 100, warmupSteps: 3 };
    const model = newModel(cfg, tok.vocabSize);
    const r = await pretrainStage({ cfg, tok, outDir: join(dir, "fall"), quiet: true }, model, texts, [], cfg.steps);
    const first = r.losses.slice(0, 3).reduce((a, b) => a + b) / 3;
    const last = r.losses.slice(-3).reduce((a, b) => a + b) / 3;
    expect(last).toBeLessThan(first - 1);
    model.free();
  });
  test("--recompute is refused by the CPU build with a clear message", async () => {
    const cfg = { ...tiny(), steps: 2, recompute: true };
    const model = newModel(cfg, tok.vocabSize);
    await expect(pretrainStage({ cfg, tok, outDir: join(dir, "recompute"), quiet: true }, model, texts, [], cfg.steps)).rejects.toThrow("--recompute: activation recomputation is a CUDA-build option");
    model.free();
  });
  test("resume continues exactly: same losses as an uninterrupted run", async () => {
    const cfg = { ...tiny(), steps: 8, evalEvery: 4, saveEvery: 100 };
    const full = await runPretrain({ cfg, outDir: join(dir, "full"), texts: texts.slice(5), valTexts: texts.slice(0, 5), tokenizer: undefined, vocabSize: 400, quiet: true });
    const tokPath = full.tokenizerPath;
    full.model.free();
    const a = await runPretrain({ cfg, outDir: join(dir, "part"), texts: texts.slice(5), valTexts: texts.slice(0, 5), tokenizer: tokPath, quiet: true, stopAfter: 3 });
    expect(a.result.interrupted).toBe(true);
    a.model.free();
    resetInterrupt();
    // as if killed inside saveCheckpointAtomic: the old checkpoint moved aside, a new one half-written
    const ck = join(dir, "part", "checkpoints");
    renameSync(join(ck, "latest"), join(ck, "latest.old-99999999"));
    mkdirSync(join(ck, "latest.tmp-99999999"));
    const b = await runPretrain({ cfg, outDir: join(dir, "part"), texts: texts.slice(5), valTexts: texts.slice(0, 5), tokenizer: tokPath, quiet: true, resume: true });
    expect(b.result.step).toBe(8);
    b.model.free();
    expect(readdirSync(ck).filter((n) => n.startsWith("latest."))).toEqual([]);
    expect([...a.result.losses, ...b.result.losses]).toEqual(full.result.losses);
    const rows = (p: string) => readFileSync(join(dir, p, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(rows("part").map((r) => [r.step, r.loss, r.val_loss])).toEqual(rows("full").map((r) => [r.step, r.loss, r.val_loss]));
    for (const c of ["latest", "final", "best"]) expect(existsSync(join(dir, "full", "checkpoints", c, "config.json"))).toBe(true);
    expect(readFileSync(join(dir, "full", "metrics.html"), "utf8")).toContain("<svg");
    expect(Tokenizer.load(tokPath).vocabSize).toBe(400);
  });
});

describe("counterfactual augmentation", () => {
  test("answers and the subject are rewritten consistently; every answer is still in the document", async () => {
    const src = new RagSource(tok, world.questions.train, docs, null, null, null, { seqLen: 512, qaPerContext: 4, topK: 3, distractors: 0, abstainRate: 0, readTwice: true, multiHopRate: 0, seed: 0, augment: 1 });
    let changed = 0, n = 0;
    for (let p = 0; p < 20; p++) {
      const conv = (await src.conversation(p, "gold"))!;
      const d = (conv.messages.find((m) => m.role === "docs") as { docs: { id: string; title: string; text: string }[] }).docs[0]!;
      const orig = docs.get(d.id)!;
      if (d.title !== orig.title) changed++;
      for (const m of conv.messages) {
        if (m.role === "user") expect(m.content).toContain(d.title);
        if (m.role === "assistant" && typeof m.content === "string" && !m.content.startsWith("The documents")) {
          n++;
          expect(d.text).toContain(m.content.replace(/ \[\d+\]\.$/, ""));
        }
      }
    }
    expect(changed).toBeGreaterThan(15);
    expect(n).toBeGreaterThan(20);
  });
});

describe("fresh names keep the world's name endings", () => {
  test("a city, country or language name gets new syllables and keeps its ending; a name without one gets none", () => {
    const rand = prng(4);
    const names = world.documents.filter((d) => d.metadata?.type === "city" || d.metadata?.type === "country").map((d) => d.title);
    let kept = 0;
    for (const name of names) {
      const fresh = freshValue(name, [], rand);
      expect(fresh).not.toBe(name);
      const ending = NAME_SUFFIXES.find((e) => name.endsWith(e) && name.length > e.length + 1);
      if (ending) {
        expect(fresh.endsWith(ending)).toBe(true);
        kept++;
      }
    }
    expect(kept).toBeGreaterThan(names.length / 3);
    expect(freshValue("Morgrimouth", [], rand)).toMatch(/^\p{Lu}\p{Ll}+mouth$/u);
    expect(freshValue("Kalo Mira", [], rand)).toMatch(/^\p{Lu}\p{Ll}+ \p{Lu}\p{Ll}+$/u);
  });
});

describe("common-noun answers from outside their relation (augmentNouns)", () => {
  // hand-made rows: four people, a profession and a hobby each
  const people = [["Kalo Mira", "nurse", "chess"], ["Tor Velsa", "baker", "rowing"], ["Quiden Bro", "pilot", "archery"], ["Fel Ortan", "weaver", "origami"]] as const;
  const handDocs = new Map(people.map(([name, job, hobby], i) => [`p${i}`, { id: `p${i}`, title: name, text: `${name} works as a ${job}. In free time, ${name} enjoys ${hobby}.` }]));
  const rows = people.flatMap(([name, job, hobby], i) => [
    { id: `q${i}a`, question: `What is the profession of ${name}?`, answer: job, relevant_docs: [`p${i}`], answerable: true, type: "single" as const },
    { id: `q${i}b`, question: `What is the hobby of ${name}?`, answer: hobby, relevant_docs: [`p${i}`], answerable: true, type: "single" as const },
  ]);
  const opts = { seqLen: 256, qaPerContext: 2, topK: 1, distractors: 0, abstainRate: 0, readTwice: true, multiHopRate: 0, seed: 0, augment: 1 };

  test("the answer and the document change together; the new word is often outside the relation's values", async () => {
    const src = new RagSource(tok, rows, handDocs, null, null, null, { ...opts, augmentNouns: 1 });
    const jobs = new Set<string>(people.map((p) => p[1])), hobbies = new Set<string>(people.map((p) => p[2]));
    let answers = 0, outside = 0, otherRelation = 0;
    for (let p = 0; p < 40; p++) {
      const conv = (await src.conversation(p, "gold"))!;
      const doc = (conv.messages.find((m) => m.role === "docs") as { docs: { id: string; text: string }[] }).docs[0]!;
      const [, job, hobby] = people[Number(doc.id.slice(1))]!;
      expect(doc.text).not.toContain(`works as a ${job}.`);
      expect(doc.text).not.toContain(`enjoys ${hobby}.`);
      conv.messages.forEach((m, i) => {
        if (m.role !== "assistant" || typeof m.content !== "string") return;
        const answer = m.content.replace(/ \[\d+\]\.$/, "");
        const asked = (conv.messages[i - (i === 2 ? 2 : 1)] as { content: string }).content;
        // the new word stands where the old one stood, in the sentence of the relation asked about
        expect(doc.text).toContain(asked.includes("profession") ? `works as a ${answer}.` : `enjoys ${answer}.`);
        const own = asked.includes("profession") ? jobs : hobbies;
        answers++;
        if (!own.has(answer)) outside++;
        if ((asked.includes("profession") ? hobbies : jobs).has(answer)) otherRelation++;
      });
    }
    expect(answers).toBe(80);
    expect(outside).toBe(80);
    expect(otherRelation).toBeGreaterThan(20); // about half: another relation's value, the rest fresh words
    expect(otherRelation).toBeLessThan(60);
    // without augmentNouns every rewritten answer stays a value of its own relation
    const same = new RagSource(tok, rows, handDocs, null, null, null, { ...opts, augmentNouns: 0 });
    for (let p = 0; p < 10; p++) {
      for (const m of (await same.conversation(p, "gold"))!.messages) {
        if (m.role === "assistant" && typeof m.content === "string") expect([...jobs, ...hobbies]).toContain(m.content.replace(/ \[\d+\]\.$/, ""));
      }
    }
  });

  test("the rewritten documents never receive weight; the answers do", async () => {
    const src = new RagSource(tok, rows, handDocs, null, null, null, { ...opts, augmentNouns: 1 });
    const DS = tok.specialId("<|docs_start|>"), DE = tok.specialId("<|docs_end|>"), AS = tok.specialId("<|assistant_start|>");
    for (let p = 0; p < 10; p++) {
      const e = (await src.example(p, "gold"))!;
      const ids = Array.from(e.ids);
      const [s, t] = [ids.indexOf(DS), ids.indexOf(DE)];
      expect(s).toBeGreaterThan(0);
      for (let i = s; i <= t; i++) expect(e.weights[i]).toBe(0);
      expect(e.weights[ids.indexOf(AS) + 1]).toBe(1);
    }
  });
});

describe("counterfactual names reach the retrieved distractors", () => {
  test("retrieval uses the real question; a distractor sharing a name word with the subject shares the fresh word", async () => {
    const handDocs = new Map([
      ["p0", { id: "p0", title: "Umte Vellomi", text: "Umte Vellomi works as a nurse. Umte Vellomi was born in Gapalo." }],
      ["p1", { id: "p1", title: "Shifel Umte", text: "Shifel Umte works as a baker. Shifel Umte was born in Lisorville." }],
    ]);
    const rows = [
      { id: "q0", question: "What is the profession of Umte Vellomi?", answer: "nurse", relevant_docs: ["p0"], answerable: true, type: "single" as const },
      { id: "q1", question: "In which city was Umte Vellomi born?", answer: "Gapalo", relevant_docs: ["p0"], answerable: true, type: "single" as const },
    ];
    const asked: string[] = [];
    const retrieve = async (q: string) => {
      asked.push(q);
      return [handDocs.get("p0")!, handDocs.get("p1")!];
    };
    const src = new RagSource(tok, rows, handDocs, retrieve, null, null, { seqLen: 256, qaPerContext: 2, topK: 2, distractors: 0, abstainRate: 0, readTwice: true, multiHopRate: 0, seed: 0, augment: 1 });
    for (let p = 0; p < 10; p++) {
      const conv = (await src.conversation(p, "full"))!;
      const ctx = (conv.messages.find((m) => m.role === "docs") as { docs: { id: string; title: string; text: string }[] }).docs;
      const [gold, other] = [ctx.find((d) => d.id === "p0")!, ctx.find((d) => d.id === "p1")!];
      const [first, last] = gold.title.split(" ");
      expect([first, last]).not.toContain("Umte");
      expect(other.title).toBe(`Shifel ${first}`); // the shared word got the same fresh name
      expect(other.text).toContain(`Shifel ${first} works as a baker.`); // the distractor's facts stay
      expect((conv.messages[0] as { content: string }).content).toContain(gold.title);
      expect(JSON.stringify(conv)).not.toContain("Umte");
    }
    expect(asked.every((q) => q.includes("Umte Vellomi"))).toBe(true);
  });
});

describe("abstention contexts", () => {
  test("a context that lost its gold document still holds topK documents, so their number does not tell the answer", async () => {
    // like BM25 on these questions: the gold document first, then others
    const pool = [...docs.values()];
    const goldOf = new Map(world.questions.train.map((q) => [q.question, q.relevant_docs[0]!]));
    const retrieve = async (q: string, k: number) => [docs.get(goldOf.get(q)!)!, ...pool.filter((d) => d.id !== goldOf.get(q))].slice(0, k);
    for (const abstainRate of [0, 1]) {
      const src = new RagSource(tok, world.questions.train, docs, retrieve, null, null, { seqLen: 512, qaPerContext: 2, topK: 2, distractors: 0, abstainRate, readTwice: true, multiHopRate: 0, seed: 0, augment: 0 });
      for (let p = 0; p < 20; p++) {
        const conv = (await src.conversation(p, "full"))!;
        const ctx = (conv.messages.find((m) => m.role === "docs") as { docs: { id: string }[] }).docs;
        expect(ctx.length).toBe(2);
        const gold = src.groups.find((g) => g.qs.some((q) => q.question === (conv.messages[0] as { content: string }).content))!.doc;
        expect(ctx.some((d) => d.id === gold)).toBe(abstainRate === 0);
        const answers = conv.messages.filter((m) => m.role === "assistant").map((m) => m.content as string);
        if (abstainRate === 1) for (const a of answers) expect(a).toBe("The documents do not say.");
      }
    }
  });
});

describe("training examples stay answerable and copyable", () => {
  test("documents are never truncated, and an answer's tokens appear verbatim in its document", async () => {
    const src = new RagSource(tok, world.questions.train, docs, async () => [...docs.values()].slice(0, 3), null, null, { seqLen: 160, qaPerContext: 4, topK: 3, distractors: 2, abstainRate: 0, readTwice: true, multiHopRate: 0, seed: 0, augment: 0 });
    const AS = tok.specialId("<|assistant_start|>"), AE = tok.specialId("<|assistant_end|>"), DE = tok.specialId("<|docs_end|>");
    let copied = 0;
    for (const phase of ["gold", "full"] as const) {
      for (let p = 0; p < 20; p++) {
        const r = (await src.example(p, phase)) as unknown as { ids: number[]; docs: { truncated: boolean }[] } | null;
        if (!r) continue;
        for (const d of r.docs) expect(d.truncated).toBe(false);
        const docEnd = r.ids.indexOf(DE);
        const ctx = r.ids.slice(0, docEnd).join(",");
        for (let i = r.ids.indexOf(AS); i >= 0; i = r.ids.indexOf(AS, i + 1)) {
          const ans = tok.decode(r.ids.slice(i + 1, r.ids.indexOf(AE, i))).replace(/ \[\d+\]\.$/, "");
          if (ans.includes("documents do not say")) continue;
          expect(ans.startsWith(" ")).toBe(true);
          expect(`,${ctx},`).toContain(`,${tok.encode(ans).join(",")},`);
          copied++;
        }
      }
    }
    expect(copied).toBeGreaterThan(10);
  });
});

describe("counterfactual multi-hop trajectories", () => {
  test("the subject, the bridge entity and the answer get fresh names everywhere; the query names what the document before it says", async () => {
    const src = new RagSource(tok, world.questions.train, docs, null, async () => [], null, { seqLen: 512, qaPerContext: 4, topK: 2, distractors: 0, abstainRate: 0, readTwice: true, multiHopRate: 1, seed: 0, augment: 1 });
    let checked = 0;
    for (let p = 0; p < 30; p++) {
      const conv = (await src.conversation(p, "full"))!;
      const q = src.bridges.find((b) => b.question === (conv.messages[0] as { content: string }).content);
      expect(q).toBeUndefined(); // the subject was renamed in the question
      const a = conv.messages.find((m) => m.role === "assistant")!;
      if (typeof a.content === "string") continue;
      const parts = a.content;
      const text = parts.at(-1) as { type: "text"; text: string };
      const answer = text.text.replace(/ (\[\d+\])+\.$/, "");
      const lastDocs = parts.filter((x) => x.type === "docs").at(-1) as { docs: { title: string; text: string }[] } | undefined;
      if (!lastDocs || answer.startsWith("The documents")) continue;
      expect(lastDocs.docs.some((d) => d.text.includes(answer))).toBe(true);
      const query = parts.filter((x) => x.type === "query").at(-1) as { text: string } | undefined;
      const bridgeTitle = lastDocs.docs.find((d) => d.text.includes(answer))!.title;
      if (query) expect(query.text).toContain(bridgeTitle);
      expect([...docs.values()].some((o) => o.title === bridgeTitle)).toBe(false);
      const before = [...(conv.messages[1] as { docs: { text: string }[] }).docs, ...parts.filter((x) => x.type === "docs").slice(0, -1).flatMap((x) => (x as { docs: { text: string }[] }).docs)];
      if (query) expect(before.some((d) => d.text.includes(bridgeTitle))).toBe(true);
      checked++;
    }
    expect(checked).toBeGreaterThan(10);
  });
});

describe("copy pretraining", () => {
  test("each example is a text with fresh names and numbers, then the same tokens again; common words stay", () => {
    const texts = trainingDocuments(world.documents).map(docText);
    const src = new TextSource(tok, texts, 0, true);
    const nl = tok.encode("\n\n");
    const seen = new Set<string>();
    for (let p = 0; p < 10; p++) {
      const e = src.get(p);
      const ids = Array.from(e.ids).slice(1);
      const half = (ids.length - nl.length) / 2;
      expect(ids.slice(0, half)).toEqual(ids.slice(half + nl.length));
      const text = tok.decode(ids.slice(0, half));
      seen.add(text);
      expect(texts).not.toContain(text);
      expect(/\b(is a|The|was)\b/.test(text)).toBe(true);
      expect(e.weights[0]).toBe(0);
    }
    // a text drawn again gets other names
    expect(tok.decode(Array.from(src.get(0).ids))).not.toBe(tok.decode(Array.from(src.get(texts.length).ids)));
    const w = freshNames("Kalo Mira was born in Kalo in 1950.", new Set(), prng(1, 2)).split(" ");
    expect(w[0]).not.toBe("Kalo");
    expect(`${w[5]}`).toBe(w[0]!); // the same word gets the same fresh name
    expect(w[7]).toMatch(/^\d{4}\.$/);
    expect(w[7]).not.toBe("1950.");
  });
});
