/**
 * Multi-process data-parallel training with CPU workers (src/train/parallel/), and --device selection.
 * The CLI is run as a user would; the workers are real processes talking over loopback TCP.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { loadCheckpoint, Model, readSafetensors } from "../src/engine/index.ts";
import { assemble, shardRows } from "../src/train/batch.ts";
import { ProcessGroup } from "../src/train/parallel/group.ts";
import { BUN, cli, ROOT, tempDir } from "./helpers.ts";

let dir: string;
let train: string[];
const NO_CUDA = { NANORAG_CUDA_LIB: "/nonexistent/libnanorag_cuda.so" };

beforeAll(() => {
  dir = tempDir("nanorag-dist-");
  const data = join(dir, "data");
  for (const args of [
    ["prepare", "--mode", "synthetic", "--out", data, "--entities", "40", "--seed", "5"],
    ["kb", "build", "--input", join(data, "documents.jsonl"), "--kb", join(dir, "kb.db"), "--retrievers", "bm25"],
    ["tokenizer", "train", "--input", join(data, "documents.jsonl"), "--vocab-size", "320", "--out", join(dir, "tok.json"), "--threads", "1"],
  ]) {
    const r = cli(args);
    if (r.code !== 0) throw new Error(`${args.join(" ")}: ${r.stderr}`);
  }
  train = ["train", "--kb", join(dir, "kb.db"), "--data", data, "--tokenizer", join(dir, "tok.json"), "--config", "cpu_tiny", "--eval-split", "none", "--device", "cpu", "--curriculum-frac", "0"];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const losses = (run: string) => readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).loss as number);
const finalParams = (run: string) => readSafetensors(join(run, "checkpoints/final/model.safetensors")).tensors;

/** Over the tensors of two runs' final checkpoints, the largest max|a - b| / max|a| (each tensor against its own scale). */
function maxParamDiff(a: string, b: string): number {
  const [x, y] = [finalParams(a), finalParams(b)];
  let worst = 0;
  for (const [name, t] of x) {
    const u = y.get(name)!.data;
    let d = 0, scale = 0;
    for (let i = 0; i < u.length; i++) {
      d = Math.max(d, Math.abs(t.data[i]! - u[i]!));
      scale = Math.max(scale, Math.abs(t.data[i]!));
    }
    worst = Math.max(worst, d / scale);
  }
  return worst;
}

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** Every file under a run folder, relative. */
function files(root: string, sub = ""): string[] {
  return readdirSync(join(root, sub), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(root, join(sub, e.name)) : [join(sub, e.name)])).sort();
}

describe("rank logic", () => {
  test("the ranks' row shards of a global batch add up to it", () => {
    const rows = [0, 1, 2, 3].map((r) => [{ ids: [1, 2 + r, 3, 4 + r, 5], weights: [0, 1, r === 2 ? 0 : 1, 1, 1] }]);
    const g = assemble(rows, 4, 4, 0);
    const parts = [0, 1].map((r) => shardRows(g, r, 2));
    expect(parts.map((p) => p.B)).toEqual([2, 2]);
    expect([...parts[0]!.tokens, ...parts[1]!.tokens]).toEqual([...g.tokens]);
    expect([...parts[0]!.targets, ...parts[1]!.targets]).toEqual([...g.targets]);
    expect(parts[0]!.weightSum + parts[1]!.weightSum).toBe(g.weightSum);
    expect(parts[1]!.weightSum).toBe(7); // row 2 has one weight-0 target
    expect(() => shardRows(g, 0, 3)).toThrow(/4 rows cannot be split between 3 ranks/);
  });

  test("the TCP all-reduce averages gradients in rank order and sums the scalars, the same on every rank", async () => {
    const cfg = { vocab_size: 40, n_embd: 16, n_head: 2, n_kv_head: 2, block_pattern: "T", sequence_len: 16 };
    const models = [Model.create(cfg, 1), Model.create(cfg, 1)];
    models.forEach((m, r) => m.step(Array.from({ length: 16 }, (_, i) => (i * (r + 3)) % 40), Array.from({ length: 16 }, (_, i) => (i * 7 + r) % 40), 2, 8));
    const g = models.map((m) => Float32Array.from(m.grads));
    const port = await freePort();
    const device = { kind: "cpu" as const, index: 0, count: 1, library: "" };
    const groups = await Promise.all([0, 1].map((rank) => ProcessGroup.join({ rank, world: 2, localRank: rank, nodeRank: 0, masterAddr: "127.0.0.1", masterPort: port }, device)));
    const sums = await Promise.all(groups.map((grp, r) => grp.allreduce(models[r]!, [r + 1, 10 * r])));
    expect(sums).toEqual([[3, 10], [3, 10]]);
    const want = g[0]!.map((v, i) => Math.fround(Math.fround(v + g[1]![i]!) * 0.5));
    expect(models[0]!.grads).toEqual(want);
    expect(models[1]!.grads).toEqual(want);
    expect(want.some((v, i) => v !== g[0]![i])).toBe(true);
    const agreed = await Promise.allSettled(groups.map((grp, r) => grp.agree("config", r === 0 ? "a" : "b")));
    for (const a of agreed) expect(a.status === "rejected" && String(a.reason)).toContain("rank 1 does not have the same config as rank 0");
    groups.forEach((grp) => grp.close());
    models.forEach((m) => m.free());
  }, 20_000);
});

describe("nanorag train --nproc-per-node (CPU workers over loopback)", () => {
  test("two processes reproduce one process with the doubled batch; only rank 0 writes", () => {
    const one = join(dir, "one"), two = join(dir, "two"), half = join(dir, "half");
    const steps = ["--steps", "4", "--save-every", "2", "--seed", "2"];
    expect(cli([...train, ...steps, "--device-batch", "4", "--threads", "1", "--out", one]).code).toBe(0);
    const r = cli([...train, ...steps, "--device-batch", "2", "--threads", "2", "--nproc-per-node", "2", "--out", two]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("launching ranks 0..1 of 2");
    expect(r.stderr).not.toContain("[rank 1]"); // rank 1 trains silently
    const [l1, l2] = [losses(one), losses(two)];
    expect(l2.length).toBe(4); // one row per step: rank 1 wrote no metrics
    for (let i = 0; i < 4; i++) expect(Math.abs(l2[i]! - l1[i]!)).toBeLessThan(2e-4 * l1[i]!);
    // Not bit-exact: each rank sums its own rows' gradient contributions before the two halves are
    // added, a different float32 summation order. Block weights agree to ~1e-7 of their scale; AdamW on
    // the token embeddings (lr ~1, eps 1e-10) turns that noise in tiny gradients into ~1e-4 (measured).
    const d = maxParamDiff(one, two);
    expect(d).toBeLessThan(1e-3);
    // a check that can fail: one process on half the batch ends somewhere else
    expect(cli([...train, ...steps, "--device-batch", "2", "--threads", "1", "--out", half]).code).toBe(0);
    expect(maxParamDiff(one, half)).toBeGreaterThan(30 * d);
    expect(files(two)).toEqual(files(one));
    expect(files(two).some((f) => f.includes(".tmp-"))).toBe(false);
  }, 60_000);

  test("two nodes (each with its own launcher) meet at --master-addr/--master-port", async () => {
    const out = join(dir, "nodes");
    const port = String(await freePort());
    const node = (rank: number) =>
      Bun.spawn([BUN, join(ROOT, "src/cli/main.ts"), ...train, "--steps", "4", "--save-every", "2", "--seed", "2", "--device-batch", "2", "--threads", "1", "--nnodes", "2", "--node-rank", String(rank), "--master-addr", "127.0.0.1", "--master-port", port, "--out", out], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const procs = [node(1), node(0)]; // node 1 first: it waits for rank 0 to listen
    const codes = await Promise.all(procs.map((p) => p.exited));
    expect(codes).toEqual([0, 0]);
    expect(maxParamDiff(join(dir, "one"), out)).toBeLessThan(1e-3);
  }, 60_000);

  test("a killed worker stops the job: the launcher names the rank and exits non-zero; checkpoints stay whole", async () => {
    const out = join(dir, "killed");
    const p = Bun.spawn([BUN, join(ROOT, "src/cli/main.ts"), ...train, "--steps", "100000", "--save-every", "3", "--eval-every", "100000", "--threads", "2", "--nproc-per-node", "2", "--out", out], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const deadline = Date.now() + 30_000;
    while (!(existsSync(join(out, "metrics.jsonl")) && readFileSync(join(out, "metrics.jsonl"), "utf8").split("\n").length > 4) && Date.now() < deadline) await Bun.sleep(100);
    const workers = Bun.spawnSync(["ps", "-o", "pid=", "--ppid", String(p.pid)]).stdout.toString().trim().split(/\s+/).map(Number);
    const rankOf = (pid: number) => /NANORAG_RANK=(\d+)/.exec(readFileSync(`/proc/${pid}/environ`, "utf8").replaceAll("\0", "\n"))![1];
    const rank1 = workers.find((w) => rankOf(w) === "1")!;
    process.kill(rank1, "SIGKILL");
    const code = await p.exited;
    const stderr = await new Response(p.stderr).text();
    expect(code).not.toBe(0);
    expect(stderr).toContain("rank 1 (node 0) was killed by SIGKILL");
    for (const w of workers) expect(existsSync(`/proc/${w}`)).toBe(false); // the launcher waited for (and reaped) every worker
    const latest = join(out, "checkpoints/latest");
    if (existsSync(latest)) expect(() => loadCheckpoint(latest).model.free()).not.toThrow();
  }, 60_000);

  test("a node whose rank 0 never shows up gives up after the rendezvous timeout, naming the address", async () => {
    const port = String(await freePort());
    const r = cli([...train, "--nnodes", "2", "--node-rank", "1", "--master-addr", "127.0.0.1", "--master-port", port, "--out", join(dir, "alone")], { env: { NANORAG_RENDEZVOUS_TIMEOUT_MS: "1500" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`rank 1 (node 1) exited with code 2: cannot reach rank 0 at 127.0.0.1:${port}`);
    expect(existsSync(join(dir, "alone"))).toBe(false);
  }, 30_000);

  test("bad input: a worker's makes the launcher exit 2 with the rank and its error; bad job flags stop before any worker starts", () => {
    const r = cli([...train.map((a) => (a.endsWith("/data") ? join(dir, "missing") : a)), "--nproc-per-node", "2", "--threads", "2", "--out", join(dir, "bad")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/rank [01] \(node 0\) exited with code 2: .*missing/);
    for (const [flags, error] of [
      [["--nproc-per-node", "0"], "--nproc-per-node must be an integer >= 1"],
      [["--nnodes", "2"], "--nnodes > 1 needs --master-addr"],
      [["--nnodes", "2", "--node-rank", "2", "--master-addr", "127.0.0.1"], "--node-rank 2 must be below --nnodes 2"],
      [["--nproc-per-node", "2", "--device", "gpu"], 'Invalid value "gpu" for --device'],
    ] as const) {
      const bad = cli([...train, ...flags, "--out", join(dir, "bad")]);
      expect({ code: bad.code, error: bad.stderr.includes(error) }).toEqual({ code: 2, error: true });
      expect(bad.stderr).not.toContain("launching");
    }
  }, 30_000);

  test("Ctrl-C stops every rank after the same step; rank 0 saves and --resume (with as many processes) finishes", async () => {
    const out = join(dir, "int");
    const args = [...train, "--eval-every", "100000", "--device-batch", "2", "--threads", "2", "--nproc-per-node", "2", "--out", out];
    const p = Bun.spawn([BUN, join(ROOT, "src/cli/main.ts"), ...args, "--steps", "100000"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const deadline = Date.now() + 30_000;
    while (!(existsSync(join(out, "metrics.jsonl")) && readFileSync(join(out, "metrics.jsonl"), "utf8").length > 0) && Date.now() < deadline) await Bun.sleep(50);
    p.kill("SIGINT");
    const code = await p.exited;
    const stderr = await new Response(p.stderr).text();
    expect({ code, stderr }).toEqual({ code: 130, stderr: expect.stringContaining("continue with --resume") });
    const state = JSON.parse(readFileSync(join(out, "checkpoints/latest/config.json"), "utf8")).meta.loop;
    expect(state.step).toBeGreaterThan(0);
    expect(losses(out).length).toBe(state.step); // rank 0 logged exactly the steps both ranks took
    const alone = cli([...args.filter((x, i) => x !== "--nproc-per-node" && args[i - 1] !== "--nproc-per-node"), "--resume"]);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain("was trained by 2 process(es), this run has 1");
    // --steps may grow on resume; here it shrinks to just past the saved step, to keep the test short
    const r = cli([...args, "--resume", "--steps", String(state.step + 3)]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`resuming ${out} at step ${state.step}`);
    expect(losses(out).length).toBe(state.step + 3);
  }, 60_000);
});

describe("--device", () => {
  test("cuda without a usable CUDA library or GPU is a clear error (exit 2)", () => {
    const r = cli(["pretrain", "--corpus", join(dir, "data/documents.jsonl"), "--config", "cpu_tiny", "--steps", "1", "--device", "cuda", "--out", join(dir, "cuda")], { env: NO_CUDA });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--device cuda: no libnanorag_cuda.so (searched /nonexistent/libnanorag_cuda.so; build it with `make -C native cuda`)");
    expect(existsSync(join(dir, "cuda", "checkpoints"))).toBe(false);
    // where the library itself is looked up (it may or may not be built on this machine), no GPU still means exit 2
    const plain = cli(["pretrain", "--corpus", join(dir, "data/documents.jsonl"), "--config", "cpu_tiny", "--steps", "1", "--device", "cuda", "--out", join(dir, "cuda")], { env: { NANORAG_CUDA_LIB: "" } });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/--device cuda: (no libnanorag_cuda\.so \(searched .*native\/build\/libnanorag_cuda\.so|.*found no usable CUDA device)/);
  });

  test("auto takes a library found at run time that reports a device (the CPU build stands in: it reports one)", () => {
    const lib = join(ROOT, "native/build/libnanorag.so");
    const r = cli(["pretrain", "--corpus", join(dir, "data/documents.jsonl"), "--tokenizer", join(dir, "tok.json"), "--config", "cpu_tiny", "--threads", "1", "--steps", "1", "--out", join(dir, "found")], { env: { NANORAG_CUDA_LIB: lib } });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`device: cuda:0 of 1 (${lib})`);
  });

  test("ranks that ended up on different devices are refused at the rendezvous", async () => {
    const port = String(await freePort());
    const node = (rank: number, env: Record<string, string>) =>
      Bun.spawn([BUN, join(ROOT, "src/cli/main.ts"), ...train.filter((a) => a !== "--device" && a !== "cpu"), "--device", "auto", "--steps", "1", "--nnodes", "2", "--node-rank", String(rank), "--master-addr", "127.0.0.1", "--master-port", port, "--out", join(dir, "mixed")], { cwd: ROOT, env: { ...process.env, ...env }, stdout: "ignore", stderr: "pipe" });
    const procs = [node(0, { NANORAG_CUDA_LIB: join(ROOT, "native/build/libnanorag.so") }), node(1, NO_CUDA)];
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual([2, 2]);
    expect(await new Response(procs[1]!.stderr).text()).toContain("rank 1 (node 1) runs on the cpu, rank 0 on the cuda; give every node the same --device");
  }, 30_000);

  test("auto falls back to the CPU and says why", () => {
    const r = cli(["pretrain", "--corpus", join(dir, "data/documents.jsonl"), "--tokenizer", join(dir, "tok.json"), "--config", "cpu_tiny", "--threads", "1", "--steps", "1", "--out", join(dir, "auto")], { env: NO_CUDA });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("--device auto: running on the CPU because no libnanorag_cuda.so (searched /nonexistent/libnanorag_cuda.so");
    expect(existsSync(join(dir, "auto/checkpoints/final/config.json"))).toBe(true);
  });
});
