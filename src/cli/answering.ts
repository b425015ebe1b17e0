/** Flags and set-up shared by the commands that answer questions (chat, ask, eval qa). */
import { type Device, type DeviceFlag, selectDevice, setThreads } from "../engine/index.ts";
import { Answerer } from "../answer/answerer.ts";
import type { AskOptions } from "../answer/answerer.ts";
import { ANSWER_MODES, type AnswerMode } from "../answer/answer.ts";
import { UserError } from "../errors.ts";
import { deviceArgs, intFlag, listFlag } from "./common.ts";
import { keyValues, suggest } from "../text.ts";

export const modelArgs = {
  model: { type: "string", description: "Checkpoint folder, or a run folder holding one (checkpoints/final, rl/, sft/)", required: true, valueHint: "DIR" },
  kb: { type: "string", description: "Knowledge-base file (SQLite)", required: true, valueHint: "FILE" },
  tokenizer: { type: "string", description: "Tokenizer file (default: the one the checkpoint names)", valueHint: "FILE" },
  plugins: { type: "string", description: "Extra folder of retriever plugins", valueHint: "DIR" },
  threads: { type: "string", description: "Engine threads (default 1)", valueHint: "N" },
  ...deviceArgs,
} as const;

export const retrievalArgs = {
  retriever: { type: "string", alias: "r", description: "Retriever (default: the one the model was trained with)", valueHint: "NAME" },
  "top-k": { type: "string", description: "Documents retrieved for the question (default: the training config's)", valueHint: "K" },
  "max-hops": { type: "string", description: "Follow-up queries answered in refrag mode (default: the training config's)", valueHint: "N" },
  "max-new-tokens": { type: "string", description: "Tokens generated at most (default: the training config's)", valueHint: "N" },
  filter: { type: "string", description: "Metadata filter for retrieval, e.g. source=web", valueHint: "K=V" },
} as const;

type ModelFlags = { model: string; kb: string; tokenizer?: string; plugins?: string; threads?: string; device?: string };
type RetrievalFlags = { retriever?: string; "top-k"?: string; "max-hops"?: string; "max-new-tokens"?: string; filter?: string };

let device: Device | undefined; // chosen once per process (eval qa opens several models)

/** Loads the model and KB a command names; the retriever is checked before any question is asked. */
export async function openAnswerer(args: ModelFlags & RetrievalFlags, model = args.model): Promise<Answerer> {
  device ??= selectDevice((args.device ?? "auto") as DeviceFlag);
  if (args.threads) setThreads(intFlag("threads", args.threads, 1));
  const a = await Answerer.open({ model, kb: args.kb, tokenizer: args.tokenizer, plugins: args.plugins });
  try {
    a.checkRetriever(args.retriever);
  } catch (e) {
    a.close();
    throw e;
  }
  return a;
}

/** Per-question options from the retrieval flags (undefined keys keep the model's defaults). */
export function askOptions(args: RetrievalFlags): AskOptions {
  const opt = (name: keyof RetrievalFlags, min = 1) => (args[name] === undefined ? undefined : intFlag(name, args[name], 0, min));
  return { retriever: args.retriever, topK: opt("top-k"), maxHops: opt("max-hops", 0), maxNewTokens: opt("max-new-tokens"), filter: keyValues("filter", args.filter) };
}

/** Every value of a flag given more than once (citty keeps only the last), commas splitting too. */
export function repeatedFlag(rawArgs: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === "--") break;
    if (a === `--${name}` && i + 1 < rawArgs.length) out.push(rawArgs[++i]!);
    else if (a.startsWith(`--${name}=`)) out.push(a.slice(name.length + 3));
  }
  return out.flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
}

/** --modes: a comma-separated subset of none, rag, refrag. */
export function modesFlag(value: string | undefined): AnswerMode[] {
  const modes = listFlag(value) ?? ANSWER_MODES;
  for (const m of modes) if (!ANSWER_MODES.includes(m as AnswerMode)) throw new UserError(`--modes: unknown mode "${m}"; expected some of ${ANSWER_MODES.join(", ")}.${suggest(m, ANSWER_MODES)}`);
  return [...new Set(modes)] as AnswerMode[];
}
