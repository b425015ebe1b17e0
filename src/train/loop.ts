/**
 * The training loop shared by pretraining, RAG SFT, REFRAG SFT and the RL stage: per step it asks
 * for the micro-batches (gradient accumulation), runs forward + backward on each with per-token
 * weights, applies the schedule and steps the optimizer; it evaluates every N steps, writes metrics
 * (JSONL + HTML plot + optional W&B), saves checkpoints (periodic "latest" with the data position,
 * "best" by the eval metric, "final"), resumes exactly from "latest", and saves on Ctrl-C.
 * In a multi-process job (a ProcessGroup) every rank trains on its rows of the same global batch and
 * the gradients are averaged before the optimizer step; rank 0 alone logs, evaluates and saves.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.ts";
import { loadCheckpoint, type Model, saveCheckpoint } from "../engine/index.ts";
import { formatRate, formatSeconds, log } from "../log.ts";
import { type MicroBatch, shardRows } from "./batch.ts";
import type { TrainConfig } from "./config.ts";
import type { ProcessGroup } from "./parallel/group.ts";
import { MetricsLog, type Row, Wandb, writePlot } from "./report.ts";
import { lrMultiplier } from "./schedule.ts";

export interface StepBatch {
  /** the global batch: in a multi-process job, deviceBatch x world rows per micro-batch, the same on every rank */
  micro: MicroBatch[];
  /** data position after this step (saved in checkpoints) */
  cursor: number;
  /** gradient scale for sum_i w_i CE_i; default 1 / (sum of the weights over all micro-batches) */
  gradScale?: number;
  /** extra metrics for this step (e.g. RL rewards) */
  metrics?: Record<string, number>;
}

export interface LoopState {
  stage: string;
  step: number;
  cursor: number;
  best: number | null;
  /** global step offset of this stage (for plots spanning stages) */
  gstep0: number;
}

export interface LoopOptions {
  stage: string;
  model: Model;
  cfg: TrainConfig;
  /** run folder: checkpoints/, metrics.jsonl, metrics.html */
  outDir: string;
  steps: number;
  /** multiplies every learning rate for this stage (e.g. RL uses a fraction of SFT's) */
  lrFrac?: number;
  nextStep(step: number, cursor: number): Promise<StepBatch>;
  evaluate?(step: number): Promise<Record<string, number>>;
  /** eval metric that selects the "best" checkpoint, and whether higher is better */
  bestKey?: string;
  bestHigher?: boolean;
  /** saved into each checkpoint's meta (tokenizer path, data settings, ...) */
  meta?: Record<string, unknown>;
  resume?: LoopState | null;
  gstep0?: number;
  wandb?: Wandb;
  /** stop after this many steps of this run (tests: simulate an interruption) */
  stopAfter?: number;
  quiet?: boolean;
  /** the ranks of a multi-process job (null: this process alone) */
  group?: ProcessGroup | null;
}

export interface LoopResult extends LoopState {
  interrupted: boolean;
  losses: number[];
  last: Row | null;
}

/** Saves into `dir` via a temporary folder and a rename, so a reader never sees a half-written checkpoint. */
export function saveCheckpointAtomic(model: Model, dir: string, meta: Record<string, unknown>): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  saveCheckpoint(model, tmp, meta);
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

/**
 * The run's "latest" checkpoint folder, repaired after a kill inside saveCheckpointAtomic: between its
 * two renames only `latest.old-PID` exists (a whole checkpoint, moved back), and a kill while writing
 * leaves a partial `latest.tmp-PID` (removed; the checkpoint it was writing never counted).
 */
export function latestCheckpointDir(outDir: string): string {
  const ck = join(outDir, "checkpoints");
  const dir = join(ck, "latest");
  if (!existsSync(ck)) return dir;
  const leftovers = readdirSync(ck).filter((n) => /^latest\.(old|tmp)-\d+$/.test(n));
  const owner = (n: string) => Number(n.slice(n.lastIndexOf("-") + 1));
  for (const n of leftovers.filter((n) => owner(n) !== process.pid)) {
    const path = join(ck, n);
    if (n.startsWith("latest.old-") && !existsSync(join(dir, "config.json")) && existsSync(join(path, "config.json"))) {
      try {
        renameSync(path, dir);
        log.warn(`${dir}: restored from ${n} (an earlier run stopped while replacing it)`);
      } catch (e) {
        if (!existsSync(join(dir, "config.json"))) throw e; // another rank of the same job restored it first
      }
    } else rmSync(path, { recursive: true, force: true });
  }
  return dir;
}

/** Reads a "latest" checkpoint folder (from latestCheckpointDir) for --resume. */
export function loadResume(dir: string): { model: Model; state: LoopState; meta: Record<string, unknown> } {
  if (!existsSync(join(dir, "config.json"))) throw new UserError(`--resume: no checkpoint at ${dir} (nothing to resume; run without --resume)`);
  const { model, meta } = loadCheckpoint(dir);
  const loop = meta.loop as LoopState | undefined;
  if (!loop) throw new UserError(`${dir}: checkpoint has no loop state (not written by nanorag train)`);
  return { model, state: loop, meta };
}

/** A checkpoint's meta (what the loop saved with it), or null when there is none. */
function checkpointMeta(dir: string): Record<string, unknown> | null {
  try {
    return (JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).meta as Record<string, unknown>) ?? null;
  } catch {
    return null;
  }
}

/** The checkpoint meta's training config, for comparing on resume. */
export function checkpointConfig(dir: string): Record<string, unknown> | null {
  return (checkpointMeta(dir)?.config as Record<string, unknown>) ?? null;
}

/** How many processes trained a checkpoint (1 for those saved before multi-process training). */
export function checkpointWorld(dir: string): number {
  return Number(checkpointMeta(dir)?.world ?? 1);
}

let interruptFlag = false;
let handlerInstalled = false;
function installSigint(): void {
  if (handlerInstalled) return;
  handlerInstalled = true;
  process.on("SIGINT", () => {
    if (interruptFlag) {
      log.warn("second Ctrl-C: exiting without saving");
      process.exit(130);
    }
    interruptFlag = true;
    log.warn("Ctrl-C: finishing this step, saving a checkpoint, then exiting (Ctrl-C again to quit at once)");
  });
}

/** Hashes of the config and the weights, which every rank must start from. */
function fingerprint(model: Model, cfg: TrainConfig): string {
  model.download();
  const p = model.params;
  return `${Bun.hash(JSON.stringify({ ...cfg, threads: 0 }))}:${Bun.hash(new Uint8Array(p.buffer, p.byteOffset, p.byteLength))}`;
}

export async function trainLoop(o: LoopOptions): Promise<LoopResult> {
  const { model, cfg } = o;
  const group = o.group ?? null;
  const lead = !group || group.lead;
  const world = group?.world ?? 1;
  installSigint();
  model.setRecompute(cfg.recompute);
  if (group) await group.agree("config and initial weights", fingerprint(model, cfg));
  const ckDir = join(o.outDir, "checkpoints");
  if (lead) mkdirSync(ckDir, { recursive: true });
  const st: LoopState = o.resume ? { ...o.resume } : { stage: o.stage, step: 0, cursor: 0, best: null, gstep0: o.gstep0 ?? 0 };
  const metrics = lead ? new MetricsLog(join(o.outDir, "metrics.jsonl"), o.resume ? { stage: o.stage, step: st.step } : null) : null;
  const plotPath = join(o.outDir, "metrics.html");
  const s = Math.sqrt(768 / cfg.nEmbd);
  const frac = cfg.initLrFrac * (o.lrFrac ?? 1);
  const sched = { steps: o.steps, warmupSteps: cfg.warmupSteps, warmdownFrac: cfg.warmdownFrac, finalFrac: cfg.finalLrFrac };
  const meta = () => ({ ...(o.meta ?? {}), config: cfg, loop: st, world });
  const save = (name: string) => lead && saveCheckpointAtomic(model, join(ckDir, name), meta());
  const losses: number[] = [];
  let last: Row | null = null;
  const t0 = performance.now();
  let tokensRun = 0;
  let ran = 0;
  const tty = Boolean(process.stderr.isTTY) && !process.env.CI;
  const every = Math.max(1, Math.round(o.steps / 20));
  let interrupted = false;
  // with several ranks, Ctrl-C counts once all ranks know of it (summed in the all-reduce), so they stop at the same step
  let stopAgreed = false;

  const doEval = async (): Promise<Row> => {
    const ev = (await o.evaluate?.(st.step)) ?? {};
    if (o.bestKey && typeof ev[o.bestKey] === "number" && Number.isFinite(ev[o.bestKey])) {
      const v = ev[o.bestKey]!;
      if (st.best === null || (o.bestHigher ? v > st.best : v < st.best)) {
        st.best = v;
        save("best");
      }
    }
    return ev;
  };

  while (st.step < o.steps) {
    if ((group ? stopAgreed : interruptFlag) || (o.stopAfter !== undefined && ran >= o.stopAfter)) {
      interrupted = true;
      break;
    }
    const stepStart = performance.now();
    const mult = lrMultiplier(st.step, sched);
    const batch = await o.nextStep(st.step, st.cursor);
    let wsum = 0;
    for (const m of batch.micro) wsum += m.weightSum;
    const gradScale = batch.gradScale ?? (wsum !== 0 ? 1 / wsum : 0);
    let lossSum = 0, weightSum = 0, toks = 0;
    for (const m of group ? batch.micro.map((b) => shardRows(b, group.rank, world)) : batch.micro) {
      // x world: the all-reduce averages, and the sum over ranks is the one-process gradient
      const r = model.step(m.tokens, m.targets, m.B, m.T, { weights: m.weights, gradScale: gradScale * world });
      lossSum += r.lossSum;
      weightSum += r.weightSum;
      toks += m.B * m.T;
    }
    // time in the all-reduce, waiting for the slowest rank included (multi-process runs only)
    let syncMs: number | null = null;
    if (group) {
      const t0 = performance.now();
      const [l, w, t, stop] = await group.allreduce(model, [lossSum, weightSum, toks, interruptFlag ? 1 : 0]);
      [lossSum, weightSum, toks, stopAgreed] = [l!, w!, t!, stop! > 0];
      syncMs = performance.now() - t0;
    }
    const lr = mult * frac;
    const gradNorm = model.optimStep({
      lrEmbed: cfg.lrEmbed * s * lr,
      lrHead: cfg.lrHead * s * lr,
      lrMatrix: cfg.lrMatrix * lr,
      lrVector: cfg.lrVector * s * lr,
      beta1: cfg.beta1,
      beta2: cfg.beta2,
      weightDecay: cfg.weightDecay * lr,
      muonMomentum: cfg.muonMomentum,
      gradClip: cfg.gradClip,
    });
    st.step++;
    st.cursor = batch.cursor;
    ran++;
    tokensRun += toks;
    // SFT: the weighted mean NLL; with an explicit gradScale (RL), the objective itself: gradScale * sum_i w_i NLL_i
    const loss = batch.gradScale !== undefined ? lossSum * batch.gradScale : weightSum !== 0 ? lossSum / weightSum : Number.NaN;
    losses.push(loss);
    const dt = (performance.now() - stepStart) / 1000;
    const elapsed = (performance.now() - t0) / 1000;
    const tokS = tokensRun / elapsed;
    const row: Row = { stage: o.stage, step: st.step, gstep: st.gstep0 + st.step, loss: Number(loss.toFixed(5)), lr: Number(mult.toFixed(5)), grad_norm: Number(gradNorm.toFixed(4)), tokens: toks, tok_s: Math.round(toks / dt), time: Number(elapsed.toFixed(2)) };
    if (syncMs !== null) row.sync_ms = Number(syncMs.toFixed(1));
    if (batch.metrics) for (const [k, v] of Object.entries(batch.metrics)) row[k] = Number(v.toFixed(5));
    const isEval = lead && o.evaluate && (st.step % cfg.evalEvery === 0 || st.step === o.steps);
    if (isEval) Object.assign(row, await doEval());
    metrics?.add(row);
    if (lead) await o.wandb?.log(row);
    last = row;
    const eta = ((o.steps - st.step) * elapsed) / ran;
    const extra = Object.entries(row).filter(([k]) => k.startsWith("val_") || k === "reward").map(([k, v]) => `${k} ${typeof v === "number" ? v.toFixed(3) : v}`).join(" ");
    const line = `${o.stage} step ${st.step}/${o.steps} loss ${loss.toFixed(4)} lr ${mult.toFixed(3)} ${formatRate(tokS)} tok/s ETA ${formatSeconds(eta)}${extra ? ` | ${extra}` : ""}`;
    if (!o.quiet && lead) {
      if (tty) process.stderr.write(`\r${line}\x1b[K${isEval ? "\n" : ""}`);
      else if (isEval || st.step % every === 0 || st.step === o.steps) log.info(line);
    }
    if (st.step % cfg.saveEvery === 0 && st.step < o.steps) save("latest");
    if (isEval && metrics) writePlot(plotPath, metrics.rows);
    await new Promise((r) => setImmediate(r)); // let Ctrl-C reach the handler
  }
  if (tty && !o.quiet && lead) process.stderr.write("\n");
  save("latest");
  if (!interrupted) save("final");
  else log.info(`saved ${join(ckDir, "latest")} at step ${st.step}; continue with --resume`);
  if (metrics) writePlot(plotPath, metrics.rows);
  return { ...st, interrupted, losses, last };
}

/** Clears the interrupt flag (tests). */
export function resetInterrupt(): void {
  interruptFlag = false;
}
