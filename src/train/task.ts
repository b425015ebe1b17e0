/**
 * `train --task NAME[:key=value,...]`: a dataset the command prepares itself instead of a `--data`
 * folder from `nanorag prepare`. It is written to `<out>/data` (with its manifest, so a resumed run or a
 * worker of a multi-process job reuses it instead of writing it again), and the KB is built from its
 * documents when the `--kb` file does not exist yet.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import { Kb } from "../kb/kb.ts";
import { prepare, type PrepareOptions } from "../data/prepare.ts";
import { readDocuments } from "../data/schema.ts";
import { keyValues, suggest } from "../text.ts";

/** Task name -> the prepare options its settings map to (only modes that produce training questions). */
const TASKS: Record<string, { keys: string[]; options: (kv: Record<string, string>) => Omit<PrepareOptions, "out"> }> = {
  synthetic: {
    keys: ["entities", "seed"],
    options: (kv) => ({ mode: "synthetic", entities: number(kv, "entities", 1000), seed: number(kv, "seed", 0) }),
  },
  hotpotqa: {
    keys: ["input", "seed", "val_fraction"],
    options: (kv) => {
      if (!kv.input) throw new UserError(`--task hotpotqa needs input=FILE (e.g. --task hotpotqa:input=dev.jsonl)`);
      return { mode: "hotpotqa", input: kv.input, seed: number(kv, "seed", 0), valFraction: number(kv, "val_fraction", 0.1) };
    },
  },
};
export const TASK_NAMES = Object.keys(TASKS);

function number(kv: Record<string, string>, key: string, fallback: number): number {
  if (kv[key] === undefined) return fallback;
  const n = Number(kv[key]);
  if (kv[key] === "" || !Number.isFinite(n)) throw new UserError(`--task: ${key} must be a number, got "${kv[key]}"`);
  return n;
}

/** Parses `NAME[:key=value,...]` into prepare options (unknown names and keys are errors naming the nearest). */
export function parseTask(spec: string): Omit<PrepareOptions, "out"> {
  const colon = spec.indexOf(":");
  const name = colon < 0 ? spec : spec.slice(0, colon);
  const task = TASKS[name];
  if (!task) throw new UserError(`--task: unknown task "${name}" (known: ${TASK_NAMES.join(", ")}).${suggest(name, TASK_NAMES)}`);
  const kv = keyValues("task", colon < 0 ? undefined : spec.slice(colon + 1)) ?? {};
  for (const k of Object.keys(kv)) {
    if (!task.keys.includes(k)) throw new UserError(`--task ${name}: unknown setting "${k}" (known: ${task.keys.join(", ")}).${suggest(k, task.keys)}`);
  }
  return task.options(kv);
}

/** Writes the task's dataset into `<outDir>/data` unless the same task made it; builds the KB if missing. Returns the data folder. */
export async function materializeTask(spec: string, outDir: string, kbPath: string, retriever: string): Promise<string> {
  const options = parseTask(spec);
  const dataDir = join(outDir, "data");
  // what made the folder: prepare is deterministic in these options, so equal options mean equal files
  const stampPath = join(dataDir, "task.json");
  const stamp = JSON.stringify(options);
  if (!existsSync(stampPath) || readFileSync(stampPath, "utf8") !== stamp) {
    const m = prepare({ ...options, out: dataDir });
    writeFileSync(stampPath, stamp);
    log.info(`--task ${spec}: ${m.files["train.jsonl"]?.rows ?? 0} training questions and ${m.files["documents.jsonl"]?.rows ?? 0} documents in ${dataDir}`);
  }
  if (!existsSync(kbPath)) {
    const { kb } = await Kb.build(kbPath, readDocuments(join(dataDir, "documents.jsonl")), { retrievers: [retriever] });
    kb.close();
    log.info(`--task ${spec}: built ${kbPath} (${retriever})`);
  }
  return dataDir;
}
