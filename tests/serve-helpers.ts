/**
 * A served tiny model for the serve tests: the seed example KB and a cpu_tiny model pretrained for a
 * few steps on it (once per test process), and `nanorag serve` started as a subprocess on a free port.
 */
import { join } from "node:path";
import { BUN, cli, ROOT, tempDir } from "./helpers.ts";

export interface Fixture {
  dir: string;
  kb: string;
  model: string;
}

let fixture: Promise<Fixture> | undefined;

/**
 * Wider and longer than cpu_tiny (64 wide, 480-token context, answers of up to 480 tokens) so that a
 * full-length answer lasts long enough (about half a second) to be cut off mid-way by a client.
 */
export function tinyServedModel(): Promise<Fixture> {
  fixture ??= (async () => {
    const dir = tempDir("nanorag-serve-");
    const run = (args: string[]) => {
      const r = cli(args);
      if (r.code !== 0) throw new Error(`nanorag ${args.join(" ")} failed:\n${r.stderr}`);
    };
    run(["prepare", "--mode", "example", "--out", join(dir, "example")]);
    run(["kb", "build", "--input", join(dir, "example/documents.jsonl"), "--kb", join(dir, "kb.db")]);
    run(["pretrain", "--kb", join(dir, "kb.db"), "--config", "cpu_tiny", "--threads", "1", "--steps", "3", "--seq-len", "480", "--n-embd", "64", "--vocab-size", "300", "--seed", "5", "--out", join(dir, "model")]);
    return { dir, kb: join(dir, "kb.db"), model: join(dir, "model") };
  })();
  return fixture;
}

export interface Served {
  url: string;
  proc: ReturnType<typeof Bun.spawn>;
  stderr: () => string;
  stop(): Promise<number>;
}

/** Starts `nanorag serve` on a free port and waits for the URL it prints on stdout. */
export async function serve(f: Fixture, extra: string[] = [], env: Record<string, string> = {}): Promise<Served> {
  const proc = Bun.spawn([BUN, join(ROOT, "src/cli/main.ts"), "serve", "--model", f.model, "--kb", f.kb, "--port", "0", "--threads", "1", ...extra], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  let err = "";
  void (async () => {
    for await (const chunk of proc.stderr) err += new TextDecoder().decode(chunk);
  })();
  const reader = proc.stdout.getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`nanorag serve exited before listening (code ${await proc.exited}):\n${err}`);
    out += new TextDecoder().decode(value);
  }
  return {
    url: out.trim(),
    proc,
    stderr: () => err,
    async stop() {
      proc.kill("SIGTERM");
      return proc.exited;
    },
  };
}

export const ask = (question: string, more: Record<string, unknown> = {}) => JSON.stringify({ messages: [{ role: "user", content: question }], ...more });

export function post(url: string, body: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { method: "POST", body, ...init, headers: { "content-type": "application/json", ...(init.headers ?? {}) } });
}

/** The `data:` payloads of a server-sent event stream, as they arrive. */
export async function* sseData(res: Response): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of res.body!) {
    buf += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, end);
      buf = buf.slice(end + 2);
      for (const line of event.split("\n")) if (line.startsWith("data: ")) yield line.slice(6);
    }
  }
}
