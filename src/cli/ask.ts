import { defineCommand } from "citty";
import { InputError, UserError } from "../errors.ts";
import { readAskQuestions } from "../answer/questions.ts";
import { appendJsonl, resumeJsonl } from "../io/resume.ts";
import { log, progress } from "../log.ts";
import { answerJson } from "./chat.ts";
import { askOptions, modelArgs, openAnswerer, retrievalArgs } from "./answering.ts";
import { printJson } from "./common.ts";

export default defineCommand({
  meta: { name: "ask", description: "Answer a file of questions in batch, one JSON line per answer in --out; re-running skips questions already answered there" },
  args: {
    ...modelArgs,
    ...retrievalArgs,
    questions: { type: "string", description: "Questions JSONL: {id?, question} per line (the seed's {query} works too)", required: true, valueHint: "FILE" },
    out: { type: "string", description: "Answers JSONL: {id, question, answer, citations, sources, hops, queries, finished, timings} per line ({id, question, error} for a question the model cannot take)", required: true, valueHint: "FILE" },
    refrag: { type: "boolean", description: "Let the model write follow-up queries (answered by the retriever, up to --max-hops)" },
    json: { type: "boolean", description: "Print the run's summary as JSON" },
  },
  async run({ args }) {
    // Everything is validated before the model loads or --out is touched.
    const questions = readAskQuestions(args.questions);
    const done = new Set<string>();
    for (const row of resumeJsonl(args.out)) {
      if (typeof row.value.id !== "string") throw new InputError(args.out, row.line, "id", "missing: this file was not written by nanorag ask");
      done.add(row.value.id);
    }
    const todo = questions.filter((q) => !done.has(q.id));
    const o = { ...askOptions(args), mode: args.refrag ? ("refrag" as const) : ("rag" as const) };
    if (done.size) log.info(`${args.out}: ${questions.length - todo.length} of ${questions.length} questions already answered; ${todo.length} to go`);
    const answerer = await openAnswerer(args);
    const t0 = performance.now();
    let failed = 0;
    try {
      const bar = progress("ask", todo.length, "questions");
      for (const [i, q] of todo.entries()) {
        try {
          appendJsonl(args.out, { id: q.id, question: q.question, ...answerJson(await answerer.answer(q.question, o)) });
        } catch (e) {
          // A question the model cannot take (longer than its context) is recorded, not retried forever.
          if (!(e instanceof UserError)) throw e;
          log.warn(`${args.questions}: question "${q.id}": ${e.message}`);
          appendJsonl(args.out, { id: q.id, question: q.question, error: e.message });
          failed++;
        }
        bar.tick(i + 1);
      }
      bar.done();
    } finally {
      answerer.close();
    }
    const summary = { out: args.out, questions: questions.length, answered: todo.length - failed, failed, skipped: questions.length - todo.length, seconds: Number(((performance.now() - t0) / 1000).toFixed(2)) };
    if (args.json) printJson(summary);
    else process.stdout.write(`${summary.answered} answered, ${failed} failed (an "error" line each), ${summary.skipped} already in ${summary.out} (${summary.seconds} s)\n`);
  },
});
