/**
 * `--nproc-per-node N [--nnodes K --node-rank R --master-addr A --master-port P]`: the launching
 * process starts N workers running the same command (the compiled binary, or Bun with the same entry
 * file), one per GPU or CPU share, and tells each its rank through the environment. Rank 0's stdout
 * and stderr pass through; other ranks' stderr (errors only: they are silent otherwise) is prefixed
 * with their rank. When a worker fails, the others are stopped and the launcher exits with that
 * worker's code, naming its rank and error; Ctrl-C is forwarded once to every worker, which finish the
 * step, let rank 0 save, and exit with 130.
 */
import { join } from "node:path";
import { createServer } from "node:net";
import { UserError } from "../../errors.ts";
import { log } from "../../log.ts";
import { PEER_LOST_EXIT } from "./wire.ts";
import type { Identity } from "./group.ts";

export interface JobShape {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  /** 0: pick a free port (one node only) */
  masterPort: number;
}

const ENV = {
  rank: "NANORAG_RANK",
  world: "NANORAG_WORLD_SIZE",
  localRank: "NANORAG_LOCAL_RANK",
  nodeRank: "NANORAG_NODE_RANK",
  masterAddr: "NANORAG_MASTER_ADDR",
  masterPort: "NANORAG_MASTER_PORT",
  threads: "NANORAG_WORKER_THREADS",
} as const;

/** This process's place in a job when a launcher started it, else null. */
export function workerIdentity(env = process.env): (Identity & { threads: number }) | null {
  if (env[ENV.rank] === undefined) return null;
  const n = (k: keyof typeof ENV) => Number(env[ENV[k]]);
  return { rank: n("rank"), world: n("world"), localRank: n("localRank"), nodeRank: n("nodeRank"), masterAddr: env[ENV.masterAddr] ?? "127.0.0.1", masterPort: n("masterPort"), threads: n("threads") };
}

/** Checks the job flags; a single process (the default) needs no launcher. */
export function jobShape(a: { nprocPerNode: number; nnodes: number; nodeRank: number; masterAddr?: string; masterPort?: number }): JobShape | null {
  if (a.nprocPerNode * a.nnodes === 1) return null;
  if (a.nodeRank >= a.nnodes) throw new UserError(`--node-rank ${a.nodeRank} must be below --nnodes ${a.nnodes}`);
  if (a.nnodes > 1 && !a.masterAddr) throw new UserError("--nnodes > 1 needs --master-addr (the address of node 0, which every node can reach)");
  return { nprocPerNode: a.nprocPerNode, nnodes: a.nnodes, nodeRank: a.nodeRank, masterAddr: a.masterAddr ?? "127.0.0.1", masterPort: a.masterPort ?? (a.nnodes > 1 ? 29500 : 0) };
}

/** The command that reruns this program with other arguments: the compiled binary itself, or Bun with the CLI's entry file. */
export function selfCommand(): string[] {
  const compiled = import.meta.path.startsWith("/$bunfs/") || import.meta.path.startsWith("B:/~BUN/");
  return compiled ? [process.execPath] : [process.execPath, join(import.meta.dir, "../../cli/main.ts")];
}

async function freePort(host: string): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => s.listen(0, host, resolve).once("error", reject));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

interface Worker {
  rank: number;
  proc: ReturnType<typeof Bun.spawn>;
  /** its last error line, else its last line (for the launcher's verdict) */
  error: string;
  last: string;
  /** the signal this launcher sent it, if any */
  signalled: NodeJS.Signals | null;
  done: Promise<void>;
}

/**
 * Runs `argv` (the CLI arguments, e.g. ["train", ...]) as this node's workers and waits for them.
 * `threads`: CPU threads of this node to share between its workers. Returns the exit code.
 */
export async function launch(argv: string[], shape: JobShape, threads: number): Promise<number> {
  const world = shape.nprocPerNode * shape.nnodes;
  const port = shape.masterPort || (await freePort(shape.masterAddr));
  const perWorker = Math.max(1, Math.floor(threads / shape.nprocPerNode));
  log.info(`launching ranks ${shape.nodeRank * shape.nprocPerNode}..${(shape.nodeRank + 1) * shape.nprocPerNode - 1} of ${world} (node ${shape.nodeRank} of ${shape.nnodes}, rendezvous ${shape.masterAddr}:${port}, ${perWorker} threads each)`);
  const failures: { w: Worker; code: number | null; signal: string | null }[] = [];
  let stopping = false;
  const workers: Worker[] = [];
  const stopOthers = () => {
    if (stopping) return;
    stopping = true;
    for (const w of workers) signal(w, "SIGTERM");
    setTimeout(() => workers.forEach((w) => signal(w, "SIGKILL")), 5000).unref();
  };
  for (let local = 0; local < shape.nprocPerNode; local++) {
    const rank = shape.nodeRank * shape.nprocPerNode + local;
    const env = { ...process.env, [ENV.rank]: String(rank), [ENV.world]: String(world), [ENV.localRank]: String(local), [ENV.nodeRank]: String(shape.nodeRank), [ENV.masterAddr]: shape.masterAddr, [ENV.masterPort]: String(port), [ENV.threads]: String(perWorker) };
    // detached: a terminal's Ctrl-C reaches the launcher alone, which forwards it exactly once
    const proc = Bun.spawn([...selfCommand(), ...argv], { env, detached: true, stdin: "ignore", stdout: rank === 0 ? "inherit" : "ignore", stderr: "pipe" });
    const w: Worker = { rank, proc, error: "", last: "", signalled: null, done: Promise.resolve() };
    const relay = relayStderr(w, rank === 0 ? "" : `[rank ${rank}] `);
    w.done = Promise.all([proc.exited, relay]).then(() => {
      if (proc.exitCode === 0) return;
      const f = { w, code: proc.exitCode, signal: proc.signalCode === null ? null : String(proc.signalCode) };
      failures.push(f);
      if (!interrupted(f)) stopOthers(); // interrupted ranks stop by themselves; rank 0 may still be saving

    });
    workers.push(w);
  }
  const onSignal = (s: NodeJS.Signals) => () => workers.forEach((w) => signal(w, s));
  const onInt = onSignal("SIGINT"), onTerm = onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  try {
    await Promise.all(workers.map((w) => w.done));
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
  if (failures.length === 0) return 0;
  if (failures.every(interrupted)) return 130;
  const culprit = failures.find((f) => f.code !== 130 && f.code !== PEER_LOST_EXIT && !(f.signal && f.signal === f.w.signalled)) ?? failures[0]!;
  const how = culprit.signal ? `was killed by ${culprit.signal}` : `exited with code ${culprit.code}`;
  const said = culprit.w.error || culprit.w.last;
  const why = said ? `: ${said}` : "";
  log.error(`rank ${culprit.w.rank} (node ${shape.nodeRank}) ${how}${why}; stopped the other ranks`);
  return culprit.code && culprit.code !== PEER_LOST_EXIT && culprit.code !== 130 ? culprit.code : 1;
}

/** Ctrl-C: a worker in its training loop exits with 130; one still starting up dies of the forwarded SIGINT. */
function interrupted(f: { w: Worker; code: number | null; signal: string | null }): boolean {
  return f.code === 130 || (f.signal === "SIGINT" && f.w.signalled === "SIGINT");
}

function signal(w: Worker, s: NodeJS.Signals): void {
  if (w.proc.exitCode !== null || w.proc.signalCode !== null) return;
  w.signalled = s;
  w.proc.kill(s);
}

const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/** Copies a worker's stderr to ours (prefixed for ranks other than 0) and keeps its last error line. */
async function relayStderr(w: Worker, prefix: string): Promise<void> {
  const dec = new TextDecoder();
  let partial = "";
  for await (const chunk of w.proc.stderr as ReadableStream<Uint8Array>) {
    const text = partial + dec.decode(chunk, { stream: true });
    const lines = text.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      const plain = line.replace(ANSI, "").trim();
      if (prefix && !plain) continue;
      process.stderr.write(`${prefix}${line}\n`);
      const error = /^(ERROR|\[error\])\s+(.*)$/.exec(plain);
      if (error) w.error = error[2]!;
      else if (plain) w.last = plain;
    }
  }
  if (partial) process.stderr.write(`${prefix}${partial}\n`);
}
