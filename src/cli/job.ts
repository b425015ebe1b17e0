/** Flags that say where training runs: `--device` (every training command) and the multi-process job flags (train, pretrain). */
import { availableParallelism } from "node:os";
import type { DeviceFlag } from "../engine/index.ts";
import type { TrainConfig } from "../train/config.ts";
import type { ProcessGroup } from "../train/parallel/group.ts";
import { jobShape, launch, workerIdentity } from "../train/parallel/launch.ts";
import { setUpProcess } from "../train/parallel/worker.ts";
import { deviceArgs, intFlag } from "./common.ts";

export const jobArgs = {
  ...deviceArgs,
  "nproc-per-node": { type: "string", description: "Worker processes on this node, one per GPU (or a share of the CPU threads each); data-parallel (default 1)", valueHint: "N" },
  nnodes: { type: "string", description: "Nodes in the job (default 1)", valueHint: "K" },
  "node-rank": { type: "string", description: "This node's index, 0..K-1 (default 0)", valueHint: "R" },
  "master-addr": { type: "string", description: "Address of node 0, where rank 0 listens for the others (default 127.0.0.1 on one node)", valueHint: "HOST" },
  "master-port": { type: "string", description: "Port rank 0 listens on (default: a free port on one node, 29500 across nodes)", valueHint: "PORT" },
} as const;

type Flags = { device?: string; "nproc-per-node"?: string; nnodes?: string; "node-rank"?: string; "master-addr"?: string; "master-port"?: string };

/**
 * Either starts this node's workers and waits for them (returns { exitCode }), or sets this process up
 * to train (the engine for --device; when a launcher started it, its rank's group) and returns the
 * config to use (with this worker's share of the threads) and the group.
 */
export async function startTraining(argv: string[], a: Flags, cfg: TrainConfig): Promise<{ exitCode: number } | { cfg: TrainConfig; group: ProcessGroup | null }> {
  const shape = jobShape({
    nprocPerNode: intFlag("nproc-per-node", a["nproc-per-node"], 1),
    nnodes: intFlag("nnodes", a.nnodes, 1),
    nodeRank: intFlag("node-rank", a["node-rank"], 0, 0),
    masterAddr: a["master-addr"],
    masterPort: a["master-port"] === undefined ? undefined : intFlag("master-port", a["master-port"], 0, 1),
  });
  if (shape && !workerIdentity()) return { exitCode: await launch(argv, shape, cfg.threads > 0 ? cfg.threads : availableParallelism()) };
  return setUpProcess((a.device ?? "auto") as DeviceFlag, cfg);
}
