/**
 * What a training command does before it builds a model: pick the engine (`--device`), and when a
 * launcher started this process, take its share of the threads, join the other ranks, keep quiet
 * unless it is rank 0, and exit if the launcher goes away.
 */
import { type DeviceFlag, selectDevice } from "../../engine/index.ts";
import { log } from "../../log.ts";
import type { TrainConfig } from "../config.ts";
import { ProcessGroup } from "./group.ts";
import { workerIdentity } from "./launch.ts";

export async function setUpProcess(flag: DeviceFlag, cfg: TrainConfig): Promise<{ cfg: TrainConfig; group: ProcessGroup | null }> {
  const me = workerIdentity();
  if (!me) {
    selectDevice(flag);
    return { cfg, group: null };
  }
  if (me.rank !== 0) log.level = 0; // errors only: rank 0 speaks for the job
  watchLauncher();
  const device = selectDevice(flag, me.localRank);
  const group = await ProcessGroup.join(me, device);
  return { cfg: { ...cfg, threads: me.threads }, group };
}

/** A worker whose launcher died (killed, crashed) is re-parented; it stops rather than train alone. */
function watchLauncher(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) {
      log.error("the launcher exited; stopping");
      process.exit(1);
    }
  }, 500).unref();
}
