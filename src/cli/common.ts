import { DEVICE_FLAGS } from "../engine/index.ts";
import { UserError } from "../errors.ts";
import { Kb } from "../kb/kb.ts";
import { loadPlugins } from "../retrieval/host.ts";

/** Flags shared by every command that opens a KB. */
export const kbArgs = {
  kb: { type: "string", description: "Knowledge-base file (SQLite)", required: true, valueHint: "FILE" },
  plugins: { type: "string", description: "Extra folder of retriever plugins", valueHint: "DIR" },
  json: { type: "boolean", description: "Print results as JSON on stdout" },
} as const;

/** `--device`: which engine every command that runs a model uses. */
export const deviceArgs = {
  device: { type: "enum" as const, options: [...DEVICE_FLAGS] as string[], description: "auto (CUDA when a GPU answers, else the CPU, saying why), cpu or cuda (default auto)", valueHint: "auto|cpu|cuda" },
};

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function intFlag(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UserError(`--${name} must be an integer >= ${min}, got "${value}"`);
  return n;
}

export function listFlag(value: string | undefined): string[] | undefined {
  return value ? value.split(",").map((s) => s.trim()).filter(Boolean) : undefined;
}

/** Loads plugins, opens the KB named by `--kb`, runs `fn`, and always closes it. */
export async function withKb<T>(args: { kb: string; plugins?: string }, write: boolean, fn: (kb: Kb) => Promise<T> | T): Promise<T> {
  await loadPlugins(args.plugins);
  const kb = await Kb.open(args.kb, { write });
  try {
    return await fn(kb);
  } finally {
    kb.close();
  }
}
