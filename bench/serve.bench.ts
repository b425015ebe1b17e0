/**
 * Server benchmark (issue 7): `nanorag serve` under 16 concurrent clients on loopback, driven by
 * autocannon. Per model: chat completions whole and streamed, and /v1/retrieve (no engine); requests
 * answered and lost, errors, requests/s, p50/p99 latency (request sent to last byte), generated
 * tokens/s. Peer, in the same run: the same answers from the Answerer called in-process one after
 * another (no HTTP, no queue), so the ratio shows what the server costs. Nothing may be lost: the
 * server's own counters (/health) must agree with the client's. Each workload runs in --rounds rounds,
 * interleaved with the peer's, and the table gives medians (and the range of req/s), so that a burst
 * of load from other processes moves one round, not one row.
 *
 *   bun bench/serve.bench.ts [--clients 16] [--threads 2] [--models tiny,small] [--rounds 3] [--quick] [--json]
 *
 * --quick: a tenth of the requests, to check the setup.
 *
 * Models: tiny = configs/cpu_tiny (32 wide, TM), small = configs/cpu_small's shape (128 wide, TMT),
 * each pretrained a few steps on the seed example (speed does not depend on what the weights learnt).
 */
import autocannon from "autocannon";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Answerer } from "../src/answer/answerer.ts";
import { setThreads } from "../src/engine/index.ts";

const argv = process.argv.slice(2);
const opt = (k: string, d: string) => {
  const i = argv.indexOf(`--${k}`);
  return i >= 0 ? argv[i + 1]! : d;
};
const CLIENTS = Number(opt("clients", "16"));
const THREADS = opt("threads", "2");
const MODELS = opt("models", "tiny,small").split(",");
const JSONOUT = argv.includes("--json");
const SCALE = argv.includes("--quick") ? 0.1 : 1;
const ROUNDS = Number(opt("rounds", "3"));
const MAX_TOKENS = 16;
const ROOT = join(import.meta.dir, "..");
const CLI = [process.execPath, join(ROOT, "src/cli/main.ts")];
const tmp = mkdtempSync(join(tmpdir(), "nanorag-bench-serve-"));
const say = (s: string) => process.stderr.write(`${s}\n`);
const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

/** Pretraining settings per model: a few steps, enough for a checkpoint with its tokenizer. */
const RECIPES: Record<string, string[]> = {
  tiny: ["--config", "cpu_tiny", "--steps", "3", "--vocab-size", "300"],
  small: ["--config", "cpu_small", "--steps", "2", "--pretrain-steps", "2", "--vocab-size", "1024"],
};
/** Requests per workload and model (about 10-30 s each on 2 busy cores). */
const AMOUNT: Record<string, Record<string, number>> = {
  tiny: { whole: 1600, streamed: 1600, retrieve: 4000 },
  small: { whole: 320, streamed: 320, retrieve: 4000 },
};

function nanorag(args: string[]): void {
  const p = Bun.spawnSync([...CLI, ...args], { cwd: ROOT, stdout: "ignore", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  if (p.exitCode !== 0) throw new Error(`nanorag ${args.join(" ")}: ${p.stderr.toString()}`);
}

async function startServer(model: string, kb: string): Promise<{ url: string; stop: () => Promise<number> }> {
  const proc = Bun.spawn([...CLI, "serve", "--model", model, "--kb", kb, "--port", "0", "--threads", THREADS, "--max-tokens", String(MAX_TOKENS), "--model-name", "bench"], { cwd: ROOT, stdout: "pipe", stderr: "inherit", env: { ...process.env, NO_COLOR: "1" } });
  const reader = proc.stdout.getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("nanorag serve exited before listening");
    out += new TextDecoder().decode(value);
  }
  return {
    url: out.trim(),
    stop: async () => {
      proc.kill("SIGTERM");
      return proc.exited;
    },
  };
}

const counters = async (url: string) => (await (await fetch(`${url}/health`)).json()).requests as { ok: number; client_errors: number; rejected_busy: number; server_errors: number; tokens_generated: number };

interface Row {
  model: string;
  workload: string;
  clients: number;
  requests: number;
  answered: number;
  lost: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
  tokensPerS: number | null;
}

const PEER = "in-process answer() (peer)";

async function load(url: string, model: string, workload: string, path: string, bodies: string[], amount: number): Promise<Row> {
  const before = await counters(url);
  const r = await autocannon({
    url: `${url}${path}`,
    connections: CLIENTS,
    amount,
    timeout: 120,
    // autocannon ends a run on its next sample tick: 1 s by default, which would pad short runs.
    sampleInt: 20,
    requests: bodies.map((body) => ({ method: "POST", headers: { "content-type": "application/json" }, body })),
  });
  const after = await counters(url);
  const answered = after.ok - before.ok;
  // The client's and the server's counts must agree; anything else is a lost request.
  const lost = amount - Math.min(answered, r["2xx"]);
  const errors = r.errors + r.timeouts + r.non2xx + (after.server_errors - before.server_errors);
  const seconds = r.duration;
  const tokens = after.tokens_generated - before.tokens_generated;
  return { model, workload, clients: CLIENTS, requests: amount, answered, lost, errors, rps: r["2xx"] / seconds, p50: r.latency.p50, p99: r.latency.p99, tokensPerS: tokens ? tokens / seconds : null };
}

/** The peer: the same answers in-process, one after another. */
async function inProcess(a: Answerer, name: string, questions: string[], n: number): Promise<Row> {
  const lat: number[] = [];
  let tokens = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    tokens += (await a.answer(questions[i % questions.length]!, { maxNewTokens: MAX_TOKENS })).timings.tokens;
    lat.push(performance.now() - t);
  }
  const seconds = (performance.now() - t0) / 1000;
  lat.sort((x, y) => x - y);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))]!;
  return { model: name, workload: PEER, clients: 1, requests: n, answered: n, lost: 0, errors: 0, rps: n / seconds, p50: pct(50), p99: pct(99), tokensPerS: tokens / seconds };
}

const rows: Row[] = [];
try {
  say(`serve bench: ${CLIENTS} clients, ${THREADS} engine threads, load average ${loadavg()}`);
  nanorag(["prepare", "--mode", "example", "--out", join(tmp, "example")]);
  const kb = join(tmp, "kb.db");
  nanorag(["kb", "build", "--input", join(tmp, "example/documents.jsonl"), "--kb", kb]);
  const questions = readFileSync(join(tmp, "example/queries.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).query as string);
  const chat = (stream: boolean) => questions.map((q) => JSON.stringify({ messages: [{ role: "user", content: q }], max_tokens: MAX_TOKENS, stream }));
  const workloads: [string, string, string[], string][] = [
    ["chat, whole", "/v1/chat/completions", chat(false), "whole"],
    ["chat, streamed (SSE)", "/v1/chat/completions", chat(true), "streamed"],
    ["retrieve (bm25, no engine)", "/v1/retrieve", questions.map((q) => JSON.stringify({ query: q, top_k: 5 })), "retrieve"],
  ];
  setThreads(Number(THREADS));
  for (const name of MODELS) {
    const model = join(tmp, name);
    say(`${name}: pretraining a checkpoint ...`);
    nanorag(["pretrain", "--kb", kb, ...RECIPES[name]!, "--threads", THREADS, "--out", model]);
    const server = await startServer(model, kb);
    const peer = await Answerer.open({ model, kb });
    const perRound = (key: string) => Math.max(CLIENTS, Math.round((AMOUNT[name]![key]! * SCALE) / ROUNDS));
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        for (const [workload, path, bodies, key] of workloads) {
          say(`${name} round ${round}/${ROUNDS}: ${workload} x ${perRound(key)} ...`);
          rows.push(await load(server.url, name, workload, path, bodies, perRound(key)));
        }
        say(`${name} round ${round}/${ROUNDS}: in-process peer ...`);
        rows.push(await inProcess(peer, name, questions, Math.round(perRound("whole") / 4)));
      }
    } finally {
      peer.close();
      await server.stop();
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const f1 = (x: number) => x.toFixed(1);
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
/** One line per model and workload over its rounds: sums of counts, medians of rates and latencies. */
const summary = [...new Set(rows.map((r) => `${r.model}\t${r.workload}`))].map((key) => {
  const rs = rows.filter((r) => `${r.model}\t${r.workload}` === key);
  const sum = (k: "requests" | "answered" | "lost" | "errors") => rs.reduce((a, r) => a + r[k], 0);
  const tok = rs.map((r) => r.tokensPerS).filter((t): t is number => t !== null);
  return { model: rs[0]!.model, workload: rs[0]!.workload, clients: rs[0]!.clients, rounds: rs.length, requests: sum("requests"), answered: sum("answered"), lost: sum("lost"), errors: sum("errors"), rps: median(rs.map((r) => r.rps)), rpsMin: Math.min(...rs.map((r) => r.rps)), rpsMax: Math.max(...rs.map((r) => r.rps)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), tokensPerS: tok.length ? median(tok) : null };
});
if (JSONOUT) process.stdout.write(`${JSON.stringify({ clients: CLIENTS, threads: THREADS, maxTokens: MAX_TOKENS, rounds: ROUNDS, loadavg: loadavg(), summary, rows }, null, 2)}\n`);
else {
  const out = [
    `Server benchmark: ${CLIENTS} clients on loopback (autocannon), ${THREADS} engine threads, max_tokens ${MAX_TOKENS}, ${ROUNDS} rounds, load average ${loadavg()} at the end`,
    "",
    "| model | workload | clients | requests | answered | lost | errors | req/s median (range) | p50 ms | p99 ms | gen tok/s | vs peer |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of summary) {
    const peer = summary.find((p) => p.model === r.model && p.workload === PEER);
    const ratio = peer && r.workload.startsWith("chat") ? `${(r.rps / peer.rps).toFixed(2)}x` : "-";
    out.push(`| ${r.model} | ${r.workload} | ${r.clients} | ${r.requests} | ${r.answered} | ${r.lost} | ${r.errors} | ${f1(r.rps)} (${f1(r.rpsMin)}-${f1(r.rpsMax)}) | ${f1(r.p50)} | ${f1(r.p99)} | ${r.tokensPerS === null ? "-" : f1(r.tokensPerS)} | ${ratio} |`);
  }
  process.stdout.write(`${out.join("\n")}\n`);
}
const bad = summary.filter((r) => r.lost || r.errors);
if (bad.length) {
  say(`FAILED: requests lost or errors in ${bad.map((r) => `${r.model} ${r.workload}`).join(", ")}`);
  process.exit(1);
}
