import { createInterface } from "node:readline";
import { defineCommand } from "citty";
import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import type { Answer } from "../answer/answer.ts";
import type { Answerer, AskOptions } from "../answer/answerer.ts";
import { askOptions, modelArgs, openAnswerer, retrievalArgs } from "./answering.ts";

/** What --json prints per answer: the contract's fields, without the internal document list. */
export function answerJson(a: Answer) {
  return { answer: a.answer, citations: a.citations, invalid_citations: a.invalid_citations, sources: a.sources, hops: a.hops, queries: a.queries, finished: a.finished, timings: a.timings };
}

/** The sources the model saw and where each citation points, after the streamed answer. */
export function formatSources(a: Answer): string {
  const lines = ["", "Sources:"];
  if (a.sources.length === 0) lines.push("  (none)");
  for (const s of a.sources) lines.push(`  [${s.n}] ${s.id}: ${s.title}`, `      ${s.snippet}`);
  if (a.queries.length) lines.push("Follow-up queries:", ...a.queries.map((q) => `  ${q}`));
  lines.push("Citations:");
  if (a.citations.length === 0 && a.invalid_citations.length === 0) lines.push("  (none)");
  for (const c of a.citations) lines.push(`  [${c.n}] -> ${c.id} (${c.title})`);
  for (const n of a.invalid_citations) lines.push(`  [${n}] -> no such document in context`);
  return `${lines.join("\n")}\n`;
}

async function turn(answerer: Answerer, question: string, o: AskOptions, json: boolean): Promise<void> {
  if (json) {
    process.stdout.write(`${JSON.stringify(answerJson(await answerer.answer(question, o)))}\n`);
    return;
  }
  const a = await answerer.answer(question, { ...o, onToken: (d) => process.stdout.write(d) });
  process.stdout.write(`\n${formatSources(a)}`);
}

export default defineCommand({
  meta: { name: "chat", description: "Ask questions about a knowledge base: each turn retrieves, streams the answer, then lists the sources and where each [n] citation points" },
  args: {
    ...modelArgs,
    ...retrievalArgs,
    refrag: { type: "boolean", description: "Let the model write follow-up queries (answered by the retriever, up to --max-hops)" },
    prompt: { type: "string", alias: "p", description: "Answer this one question and exit", valueHint: "QUESTION" },
    json: { type: "boolean", description: "Print each answer as JSON (answer, citations, sources, hops, timings) instead of streaming text" },
  },
  async run({ args }) {
    const answerer = await openAnswerer(args);
    try {
      const o: AskOptions = { ...askOptions(args), mode: args.refrag ? "refrag" : "rag" };
      if (args.prompt !== undefined) return await turn(answerer, args.prompt, o, Boolean(args.json));
      const rl = createInterface({ input: process.stdin, output: process.stderr, prompt: "> ", terminal: Boolean(process.stdin.isTTY) });
      if (process.stdin.isTTY) rl.prompt();
      for await (const line of rl) {
        const q = line.trim();
        // A question the model cannot take (too long for its context) ends that turn, not the session.
        if (q) await turn(answerer, q, o, Boolean(args.json)).catch((e) => (e instanceof UserError ? log.error(e.message) : Promise.reject(e)));
        if (process.stdin.isTTY) rl.prompt();
      }
    } finally {
      answerer.close();
    }
  },
});
